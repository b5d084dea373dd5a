"""Daily extraction: pull raw tables from operational databases and files into dated local
files (step 1), load a day's files into the warehouse (step 2), so that ordinary SQL
targets transform them (step 3).

Modules: ``files`` (day directories, deterministic parquet, manifests), ``postgres`` and
``csvfiles`` (the two kinds of ``[extract.<name>]``), ``daylog`` (which task of which day
succeeded, in ``.state/pipeline.sqlite``), ``pipeline`` (the steps and their ordering) and
``export`` (a table to CSV or JSON). They are clients of the core: loading goes through the
backend's ``load_file``, and loaded tables are ordinary sources to the planner.
"""
