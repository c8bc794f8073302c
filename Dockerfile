# One image for every process of the platform; docker-compose.yml picks the command.
FROM python:3.11-slim
WORKDIR /app
ENV PYTHONUNBUFFERED=1 HF_HUB_OFFLINE=1
RUN apt-get update -q && apt-get install -y -q --no-install-recommends git && rm -rf /var/lib/apt/lists/*
COPY pyproject.toml constraints.txt README.md ./
COPY services services
COPY agents agents
COPY memory memory
COPY causal causal
COPY iac iac
COPY web web
COPY sim sim
COPY bench bench
RUN pip install --no-cache-dir torch==2.13.0 --index-url https://download.pytorch.org/whl/cpu \
 && grep -v '^torch==' constraints.txt > /tmp/constraints.txt \
 && pip install --no-cache-dir -c /tmp/constraints.txt .
EXPOSE 8000
CMD ["aiops", "api", "--host", "0.0.0.0", "--port", "8000"]
