FROM python:3.11-slim
WORKDIR /app
COPY requirements.txt .
RUN pip install --no-cache-dir -r requirements.txt
COPY . .
# The project itself: its pipelines are registered as entry points (pyproject.toml).
RUN pip install --no-cache-dir --no-deps --no-build-isolation -e .
ENV PYTHONUNBUFFERED=1
