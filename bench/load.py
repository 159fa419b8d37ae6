"""A lean HTTP load generator: keep-alive connections on asyncio, so that the client
takes as little of the shared CPU as it can."""

import asyncio
import json
import time

from bench.stats import summary


def http_request_bytes(method: str, url_path: str, host: str, headers: dict,
                       body: bytes = b"") -> bytes:
    lines = [f"{method} {url_path} HTTP/1.1", f"Host: {host}",
             f"Content-Length: {len(body)}"]
    lines += [f"{k}: {v}" for k, v in headers.items()]
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + body


async def _read_response(reader) -> tuple[int, bytes, bool]:
    head = await reader.readuntil(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0].split(" ", 2)[1])
    length, close = 0, False
    for line in lines[1:]:
        name, _, value = line.partition(":")
        name = name.strip().lower()
        if name == "content-length":
            length = int(value.strip())
        elif name == "connection" and value.strip().lower() == "close":
            close = True
    body = await reader.readexactly(length) if length else b""
    return status, body, close


async def _load_client(host: str, port: int, request: bytes, stop_at: float,
                       measure_from: float, stats: dict) -> None:
    reader = writer = None
    try:
        while time.perf_counter() < stop_at:
            if writer is None:
                reader, writer = await asyncio.open_connection(host, port)
            sent = time.perf_counter()
            writer.write(request)
            status, body, close = await _read_response(reader)
            done = time.perf_counter()
            if sent >= measure_from and done <= stop_at:
                stats["status"][status] = stats["status"].get(status, 0) + 1
                stats["latency"].append(done - sent)
                if len(stats["bodies"]) < 3 and status >= 400:
                    stats["bodies"].append(body[:300].decode(errors="replace"))
            if close:
                writer.close()
                writer = None
    finally:
        if writer is not None:
            writer.close()


def load(base_url: str, method: str, url_path: str, headers: dict, body: bytes,
         clients: int, seconds: float, warmup: float = 1.0) -> dict:
    """`clients` keep-alive connections sending the same request back to back for
    warmup + seconds; counts the answers that came within the measured window. A
    hand-written HTTP/1.1 client on asyncio, so that the client takes as little of the
    shared CPU as it can (httpx or requests would cap what a bare server shows)."""
    from urllib.parse import urlsplit

    parts = urlsplit(base_url)
    request = http_request_bytes(method, url_path, parts.netloc, headers, body)
    stats = {"status": {}, "latency": [], "bodies": []}

    async def main():
        start = time.perf_counter()
        measure_from = start + warmup
        stop_at = measure_from + seconds
        await asyncio.gather(*(_load_client(parts.hostname, parts.port, request, stop_at,
                                            measure_from, stats) for _ in range(clients)))

    asyncio.run(main())
    ok = sum(n for status, n in stats["status"].items() if status < 300)
    return {"seconds": seconds, "clients": clients, "ok": ok, "rate": ok / seconds,
            "status": stats["status"], "latency": summary(stats["latency"]),
            "errors": stats["bodies"]}


def submit_many(base_url: str, headers: dict, body: dict, count: int, clients: int = 16,
                path: str = "/echo") -> dict:
    """Submits `count` async jobs as fast as `clients` connections can; returns the
    number accepted (202), their job ids, the time taken and the rate."""
    from urllib.parse import urlsplit

    parts = urlsplit(base_url)
    payload = json.dumps(body).encode()
    request = http_request_bytes("POST", path, parts.netloc,
                                 {**headers, "Content-Type": "application/json",
                                  "Prefer": "respond-async"}, payload)
    left = [count]
    statuses: dict[int, int] = {}
    errors: list[str] = []
    ids: list[str] = []

    async def client():
        reader, writer = await asyncio.open_connection(parts.hostname, parts.port)
        try:
            while left[0] > 0:
                left[0] -= 1
                writer.write(request)
                status, answer, close = await _read_response(reader)
                statuses[status] = statuses.get(status, 0) + 1
                if status == 202:
                    ids.append(json.loads(answer)["id"])
                elif len(errors) < 3:
                    errors.append(answer[:300].decode(errors="replace"))
                if close:
                    writer.close()
                    reader, writer = await asyncio.open_connection(parts.hostname, parts.port)
        finally:
            writer.close()

    async def main():
        await asyncio.gather(*(client() for _ in range(min(clients, count))))

    started = time.perf_counter()
    asyncio.run(main())
    seconds = time.perf_counter() - started
    accepted = statuses.get(202, 0)
    if accepted != count:
        raise RuntimeError(f"{accepted} of {count} submissions accepted: {statuses} {errors}")
    return {"accepted": accepted, "ids": ids, "seconds": seconds, "rate": accepted / seconds}
