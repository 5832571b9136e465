#!/usr/bin/env python3
"""Load generator for the rsession end-to-end harness (stdlib only).

`run`: many keep-alive connections, each bound to one of a few session ids
(its cookie is fixed for the connection), send a mix of /inc.php,
/slow.php and /ro.php for a fixed time. At the deadline no new request is
sent but every request in flight is awaited (drained), so the number of
successful increments per session is exact: the final counter must equal
it. A request that times out is "unknown" (it may or may not have been
stored) and widens the accepted range instead of being guessed.

`get`: one request, prints "<status> <seconds> <body>"; for fault scenarios.

Output of `run` is one JSON object (stdout or --out).
"""
import argparse
import asyncio
import json
import random
import sys
import time

WRITE_PAGES = ("inc", "slow")


class Conn:
    """One HTTP/1.1 keep-alive connection to host:port."""

    def __init__(self, host, port):
        self.host, self.port = host, port
        self.reader = self.writer = None

    async def close(self):
        if self.writer is not None:
            self.writer.close()
            try:
                await self.writer.wait_closed()
            except Exception:
                pass
        self.reader = self.writer = None

    async def request(self, path, cookie):
        if self.writer is None:
            self.reader, self.writer = await asyncio.open_connection(self.host, self.port)
        head = (f"GET {path} HTTP/1.1\r\nHost: {self.host}:{self.port}\r\n"
                f"Cookie: PHPSESSID={cookie}\r\nUser-Agent: rsession-e2e\r\n\r\n")
        self.writer.write(head.encode())
        await self.writer.drain()
        status_line = await self.reader.readline()
        if not status_line:
            raise ConnectionError("connection closed by server")
        status = int(status_line.split()[1])
        headers = {}
        while True:
            line = await self.reader.readline()
            if line in (b"\r\n", b"\n", b""):
                break
            k, _, v = line.decode("latin-1").partition(":")
            headers[k.strip().lower()] = v.strip()
        if headers.get("transfer-encoding", "").lower() == "chunked":
            body = b""
            while True:
                size = int((await self.reader.readline()).split(b";")[0], 16)
                if size == 0:
                    while (await self.reader.readline()) not in (b"\r\n", b"\n", b""):
                        pass
                    break
                body += await self.reader.readexactly(size)
                await self.reader.readline()
        elif "content-length" in headers:
            body = await self.reader.readexactly(int(headers["content-length"]))
        else:
            body = await self.reader.read()
            await self.close()
            return status, body.decode("latin-1")
        if headers.get("connection", "").lower() == "close":
            await self.close()
        return status, body.decode("latin-1")


def parse_mix(text):
    mix = []
    for part in text.split(","):
        name, _, weight = part.partition(":")
        mix.append((name.strip(), float(weight)))
    return mix


def percentile(values, p):
    if not values:
        return None
    values = sorted(values)
    k = min(len(values) - 1, max(0, int(round(p / 100 * (len(values) - 1)))))
    return round(values[k] * 1000, 1)


async def worker(idx, args, sessions, stats, start, deadline, timeline):
    sid = sessions[idx % len(sessions)]
    s = stats[sid]
    rnd = random.Random(args.seed * 1000 + idx)
    names = [m[0] for m in args.mix]
    weights = [m[1] for m in args.mix]
    conn = Conn(args.host, args.port)
    try:
        while time.monotonic() < deadline:
            page = rnd.choices(names, weights)[0]
            if page == "ro":
                ini = rnd.random() < 0.5
                path = "/ro.php?m=ini" if ini else "/ro.php"
            else:
                path = f"/{page}.php"
            kind = "write" if page in WRITE_PAGES else "read"
            t0 = time.monotonic()
            try:
                status, body = await asyncio.wait_for(conn.request(path, sid), args.timeout)
            except asyncio.TimeoutError:
                await conn.close()
                s["errors"]["timeout"] = s["errors"].get("timeout", 0) + 1
                timeline[int(time.monotonic() - start)][1] += 1
                if kind == "write":
                    s["unknown"] += 1
                continue
            except (OSError, ConnectionError, asyncio.IncompleteReadError, ValueError, IndexError) as e:
                await conn.close()
                key = "conn:" + type(e).__name__
                s["errors"][key] = s["errors"].get(key, 0) + 1
                timeline[int(time.monotonic() - start)][1] += 1
                # The request may have reached PHP before the connection broke.
                if kind == "write":
                    s["unknown"] += 1
                await asyncio.sleep(0.01)
                continue
            dt = time.monotonic() - t0
            s["requests"] += 1
            sec = int(time.monotonic() - start)
            parts = body.split()
            tag = "OK" if kind == "write" else "RO"
            ok = (status == 200 and len(parts) == 3 and parts[0] == tag and parts[1] == sid
                  and parts[2].isdigit())
            if not ok:
                key = f"http{status}:" + (" ".join(parts[:2])[:40] if parts else "empty")
                s["errors"][key] = s["errors"].get(key, 0) + 1
                timeline[sec][1] += 1
                if kind == "write" and status not in (500, 503):
                    # Not a page answer we know (e.g. 502 from a dead worker):
                    # whether it was stored is unknown.
                    s["unknown"] += 1
                continue
            n = int(parts[2])
            timeline[sec][0] += 1
            if kind == "write":
                s["writes_ok"] += 1
                s["values"].append(n)
                s["acked"].append((n, time.time()))
                s["lat_write"].append(dt)
            else:
                s["reads_ok"] += 1
                s["max_read"] = max(s["max_read"], n)
                s["lat_read_ini" if path.endswith("=ini") else "lat_read"].append(dt)
    finally:
        await conn.close()


async def run(args):
    sessions = args.sessions.split(",")
    stats = {sid: {"requests": 0, "writes_ok": 0, "reads_ok": 0, "unknown": 0, "errors": {},
                   "values": [], "acked": [], "max_read": 0, "lat_write": [], "lat_read": [],
                   "lat_read_ini": []} for sid in sessions}
    start = time.monotonic()
    start_wall = time.time()
    deadline = start + args.duration
    # [successes, errors] by second since the start, by completion time.
    timeline = [[0, 0] for _ in range(int(args.duration + 2 * args.timeout) + 2)]
    await asyncio.gather(*(worker(i, args, sessions, stats, start, deadline, timeline)
                           for i in range(args.conns)))
    elapsed = time.monotonic() - start
    while len(timeline) > 1 and timeline[-1] == [0, 0]:
        timeline.pop()
    out = {"elapsed_s": round(elapsed, 2), "conns": args.conns, "sessions": {}, "timeline": timeline,
           "start_wall": start_wall}
    lat_w, lat_r, lat_ri = [], [], []
    for sid, s in stats.items():
        values = s.pop("values")
        acked = s.pop("acked")
        if args.keep_values:
            s["acked"] = acked
        dups = len(values) - len(set(values))
        lat_w += s.pop("lat_write")
        lat_r += s.pop("lat_read")
        lat_ri += s.pop("lat_read_ini")
        s["duplicate_values"] = dups
        s["max_value"] = max(values) if values else 0
        out["sessions"][sid] = s
    out["requests"] = sum(s["requests"] for s in stats.values())
    out["req_per_s"] = round(out["requests"] / elapsed, 1) if elapsed else 0
    out["write_p50_ms"] = percentile(lat_w, 50)
    out["write_p99_ms"] = percentile(lat_w, 99)
    out["read_p50_ms"] = percentile(lat_r, 50)
    out["read_p99_ms"] = percentile(lat_r, 99)
    out["read_ini_p50_ms"] = percentile(lat_ri, 50)
    out["read_ini_p99_ms"] = percentile(lat_ri, 99)
    text = json.dumps(out, indent=1, sort_keys=True)
    if args.out:
        with open(args.out, "w") as f:
            f.write(text + "\n")
    else:
        print(text)


async def get(args):
    conn = Conn(args.host, args.port)
    t0 = time.monotonic()
    try:
        status, body = await asyncio.wait_for(conn.request(args.path, args.cookie), args.timeout)
    except asyncio.TimeoutError:
        status, body = 0, "TIMEOUT"
    except (OSError, ConnectionError, asyncio.IncompleteReadError) as e:
        status, body = 0, "CONNERR " + type(e).__name__
    finally:
        await conn.close()
    print(f"{status} {time.monotonic() - t0:.3f} {body.strip()}")


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, required=True)
    p.add_argument("--timeout", type=float, default=30.0, help="per request, seconds")
    sub = p.add_subparsers(dest="cmd", required=True)
    r = sub.add_parser("run")
    r.add_argument("--sessions", required=True, help="comma-separated session ids")
    r.add_argument("--conns", type=int, default=32)
    r.add_argument("--duration", type=float, default=12.0)
    r.add_argument("--mix", type=parse_mix, default=parse_mix("inc:83,slow:2,ro:15"))
    r.add_argument("--seed", type=int, default=1)
    r.add_argument("--out")
    r.add_argument("--keep-values", action="store_true",
                   help="list every acknowledged counter value with its wall time")
    g = sub.add_parser("get")
    g.add_argument("path")
    g.add_argument("--cookie", required=True)
    args = p.parse_args()
    asyncio.run(run(args) if args.cmd == "run" else get(args))


if __name__ == "__main__":
    sys.exit(main())
