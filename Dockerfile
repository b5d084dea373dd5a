# tablemake as a service: `tablemake serve` on port 8080 for the project copied in.
# The build steps are the README's own install command (scripts/setup), so the image runs
# what CI tests. No credentials are baked in: pass them at `docker run` time (see the README, "In a container, against BigQuery").
FROM python:3.11-slim

WORKDIR /project
COPY . /project
# A checkout may carry a local venv or state; the image makes its own and starts clean.
RUN rm -rf .venv .venv-* .state && scripts/setup && mkdir .state \
    && useradd --create-home --uid 10001 tablemake && chown -R tablemake /project
USER tablemake
# Pass the token at run time: docker run -e TABLEMAKE_API_TOKEN=… (never in this file).

EXPOSE 8080
CMD [".venv/bin/tablemake", "serve", "--host", "0.0.0.0"]
