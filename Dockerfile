# The orderflow image: one build for the API (default command) and the worker (`python -m worker`).

ARG PYTHON_IMAGE=python:3.11-slim-bookworm

# ---------------------------------------------------------------- build: a self-contained virtualenv
FROM ${PYTHON_IMAGE} AS build

# pip byte-compiles what it installs: the runtime user cannot write .pyc files into /opt/venv.
ENV PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_NO_CACHE_DIR=1
RUN python -m venv /opt/venv
ENV PATH=/opt/venv/bin:$PATH
WORKDIR /src

# Dependencies first, from pyproject.toml alone, so a code change does not reinstall them.
COPY pyproject.toml ./
RUN python -c "import tomllib; print('\n'.join(tomllib.load(open('pyproject.toml', 'rb'))['project']['dependencies']))" \
        > /tmp/requirements.txt \
    && pip install -r /tmp/requirements.txt

COPY . .
# The smoke test runs outside /src, so it proves the installed package is complete: every module imports
# and the database migrations ship with it.
RUN pip install --no-deps . \
    && cd /tmp \
    && python -c "import api.main, worker; from services.db import create_schema, make_engine; \
create_schema(make_engine('sqlite:////tmp/smoke/orderflow.db'))" \
    && rm -rf /tmp/smoke

# ---------------------------------------------------------------- runtime: no compilers, no sources, no root
FROM ${PYTHON_IMAGE}

ENV PATH=/opt/venv/bin:$PATH \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1

RUN groupadd --system --gid 10001 orderflow \
    && useradd --system --uid 10001 --gid orderflow --home-dir /app --shell /usr/sbin/nologin orderflow \
    && mkdir -p /app \
    && chown orderflow:orderflow /app

COPY --from=build /opt/venv /opt/venv

WORKDIR /app
USER 10001:10001

EXPOSE 8000

# Exec form: uvicorn (and the worker's `python -m worker`) get SIGTERM as PID 1 and shut down gracefully.
CMD ["uvicorn", "api.main:app", "--host", "0.0.0.0", "--port", "8000"]
