# threadrec worker image. GPU hosts: build with --build-arg EXTRAS=gpu (faiss-gpu-cu12) and
# run with the NVIDIA runtime (docker-compose reserves the GPU for the worker).
FROM python:3.11-slim
ARG EXTRAS=""
ARG TORCH="torch==2.13.0"
ENV PYTHONUNBUFFERED=1 HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1
WORKDIR /app
RUN apt-get update && apt-get install -y --no-install-recommends build-essential \
    && rm -rf /var/lib/apt/lists/*
COPY pyproject.toml README.md ./
COPY model ./model
COPY store ./store
COPY streams ./streams
RUN pip install --no-cache-dir "$TORCH" \
    && pip install --no-cache-dir ".${EXTRAS:+[$EXTRAS]}" \
    && if [ "$EXTRAS" = "gpu" ]; then pip uninstall -y faiss-cpu && pip install --no-cache-dir --force-reinstall faiss-gpu-cu12; fi \
    && pip install --no-cache-dir --no-deps recbole==1.2.1
ENTRYPOINT ["threadrec"]
CMD ["--help"]
