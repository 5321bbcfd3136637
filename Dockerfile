# The monitor's image: `medmon worker` by default; the same image replays the demo feed.
FROM python:3.11-slim AS build
WORKDIR /src
COPY pyproject.toml README.md constraints.txt ./
COPY monitor ./monitor
COPY schemas ./schemas
RUN pip wheel --no-cache-dir --wheel-dir /wheels -c constraints.txt .

FROM python:3.11-slim
# /app is the user's own: faust makes its data directory (<app id>-data) in the working
# directory when the worker starts (MEDSAFETY_DATA_DIR puts it elsewhere), and a
# root-owned /app failed that with PermissionError
RUN useradd --system --uid 10001 --create-home --home-dir /app medsafety
WORKDIR /app
COPY --from=build /wheels /wheels
RUN pip install --no-cache-dir /wheels/*.whl && rm -rf /wheels
COPY monitor/demo/feed.ndjson /app/demo/feed.ndjson
USER medsafety
ENV MEDSAFETY_METRICS_HOST=0.0.0.0 \
    MEDSAFETY_METRICS_PORT=9464 \
    PYTHONUNBUFFERED=1
EXPOSE 9464
HEALTHCHECK --interval=15s --timeout=5s --start-period=60s --retries=3 \
  CMD python -c "import urllib.request,sys; urllib.request.urlopen('http://127.0.0.1:9464/healthz', timeout=4); sys.exit(0)"
ENTRYPOINT ["medmon"]
CMD ["worker", "--loglevel", "warn"]
