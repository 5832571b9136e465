#!/usr/bin/env python3
"""Judges the end-to-end runs and writes the report.

`handler DIR NAME KIND NOTE`: one handler run (DIR/load.json, counts.txt,
crashes.txt, rsession-warnings.txt, php-warnings.txt) -> JSON on stdout.
`report RUN`: every result under RUN/results -> markdown on stdout; exit 1
when an rsession handler lost an increment, a worker crashed or an
rsession warning appeared that no scenario provoked.
"""
import glob
import json
import os
import platform
import subprocess
import sys
import time


def lines(path):
    try:
        with open(path) as f:
            return [l.rstrip("\n") for l in f if l.strip()]
    except OSError:
        return []


def judge_handler(d, name, kind, note):
    load = json.load(open(os.path.join(d, "load.json")))
    counts = {}
    count_errors = []
    for line in lines(os.path.join(d, "counts.txt")):
        parts = line.split()
        # "<sid> <status> <secs> COUNT <sid> <n>"
        if len(parts) == 6 and parts[1] == "200" and parts[3] == "COUNT" and parts[4] == parts[0]:
            counts[parts[0]] = int(parts[5])
        else:
            count_errors.append(line)
    res = {"name": name, "kind": kind, "status": "ran", "note": note,
           "elapsed_s": load["elapsed_s"], "req_per_s": load["req_per_s"],
           "write_p50_ms": load["write_p50_ms"], "write_p99_ms": load["write_p99_ms"],
           "read_p50_ms": load["read_p50_ms"], "read_p99_ms": load["read_p99_ms"],
           "read_ini_p50_ms": load.get("read_ini_p50_ms"),
           "requests": 0, "writes_ok": 0, "reads_ok": 0, "errors": 0, "unknown": 0,
           "lost": 0, "phantom": 0, "duplicates": 0, "error_kinds": {}, "sessions": [],
           "count_errors": count_errors}
    for sid, s in load["sessions"].items():
        final = counts.get(sid)
        errs = sum(s["errors"].values())
        for k, v in s["errors"].items():
            res["error_kinds"][k] = res["error_kinds"].get(k, 0) + v
        res["requests"] += s["requests"] + s["errors"].get("timeout", 0) + sum(
            v for k, v in s["errors"].items() if k.startswith("conn:"))
        res["writes_ok"] += s["writes_ok"]
        res["reads_ok"] += s["reads_ok"]
        res["errors"] += errs
        res["unknown"] += s["unknown"]
        res["duplicates"] += s["duplicate_values"]
        lost = phantom = None
        if final is not None:
            # Every successful increment must be in the counter; beyond
            # them only requests whose fate is unknown may have counted.
            lost = max(0, s["writes_ok"] - final)
            phantom = max(0, final - s["writes_ok"] - s["unknown"])
            res["lost"] += lost
            res["phantom"] += phantom
        res["sessions"].append({"sid": sid, "writes_ok": s["writes_ok"], "final": final,
                                "unknown": s["unknown"], "lost": lost, "phantom": phantom,
                                "duplicate_values": s["duplicate_values"], "max_read": s["max_read"]})
    res["crashes"] = lines(os.path.join(d, "crashes.txt"))
    res["rsession_warnings"] = lines(os.path.join(d, "rsession-warnings.txt"))
    provoked = lines(os.path.join(d, "rsession-warnings-expected.txt"))
    res["provoked_warnings"] = int(provoked[0]) if provoked else 0
    res["php_warnings"] = len(lines(os.path.join(d, "php-warnings.txt")))
    res["php_warning_sample"] = lines(os.path.join(d, "php-warnings.txt"))[:3]
    problems = []
    if res["crashes"]:
        problems.append(f"{len(res['crashes'])} worker crash line(s)")
    if count_errors:
        problems.append("final counter unreadable")
    if res["lost"] or res["phantom"] or res["duplicates"]:
        problems.append(f"{res['lost']} lost, {res['phantom']} phantom increments, "
                        f"{res['duplicates']} duplicate counter values")
    # rsession is loaded in the peers' runs too (as `make install` would
    # have it): a warning of its own there is just as unexpected.
    if res["rsession_warnings"]:
        problems.append(f"{len(res['rsession_warnings'])} unexpected rsession warning(s)")
    if not problems:
        res["verdict"] = "pass"
    elif kind == "rsession" or res["crashes"] or res["rsession_warnings"]:
        res["verdict"] = "FAIL"
    else:
        res["verdict"] = "reported" if kind == "peer-lossy" else "peer problem"
    res["problems"] = problems
    return res


def fmt(v, unit=""):
    return "–" if v is None else f"{v}{unit}"


def machine():
    cpu = "?"
    try:
        for l in open("/proc/cpuinfo"):
            if l.startswith("model name"):
                cpu = l.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    def ver(cmd):
        try:
            r = subprocess.run(cmd, capture_output=True, text=True, timeout=5)
            return (r.stdout or r.stderr).splitlines()[0]
        except Exception:
            return "?"
    return (f"{os.cpu_count()} CPU ({cpu}), Linux {platform.release()}; "
            f"{ver(['php-fpm8.2', '-v'])}; {ver(['nginx', '-v']).replace('nginx version: ', '')}; {ver(['python3', '-V'])} load generator")


def report(run):
    handlers = [json.load(open(p)) for p in sorted(glob.glob(f"{run}/results/handler-*.json"))]
    order = os.environ.get("E2E_HANDLERS", "").split()
    handlers.sort(key=lambda h: order.index(h["name"]) if h["name"] in order else 99)
    faults = [json.load(open(p)) for p in sorted(glob.glob(f"{run}/results/fault-*.json"))]
    forder = os.environ.get("E2E_FAULTS", "").split()
    faults.sort(key=lambda f: forder.index(f"{f['kind']}:{f['name']}")
                if f"{f['kind']}:{f['name']}" in forder else 99)
    stores = open(f"{run}/stores").read().strip() if os.path.exists(f"{run}/stores") else "?"
    out = []
    w = out.append
    w("# rsession end-to-end soak (nginx + php-fpm)")
    w("")
    w(f"{time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}; {machine()}; rsession stores compiled in: {stores}.")
    dur = os.environ.get("E2E_DURATION", "12")
    w(f"Load: {os.environ.get('E2E_CONNS', '32')} keep-alive connections on "
      f"{os.environ.get('E2E_SESSIONS', '4')} sessions, {dur} s per handler, mix "
      f"{os.environ.get('E2E_MIX', 'inc:83,slow:2,ro:15')} (slow = increment, then hold the lock 200 ms; "
      f"ro = half read_and_close, half rsession.read_only); php-fpm pm=static "
      f"{os.environ.get('E2E_WORKERS', '12')} workers; lock wait {os.environ.get('E2E_LOCK_WAIT_MS', '10000')} ms.")
    w("")
    w("## Handlers")
    w("")
    w("| handler | requests | write ok | read ok | errors | lost incr. | phantom | dup. values | "
      "rsession warnings | PHP warnings | crashes | req/s | write p50/p99 ms | read p50 ms rac/ro | verdict |")
    w("|---|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|---|")
    failed = []
    notes = []
    for h in handlers:
        if h["status"] == "skipped":
            w(f"| {h['name']} | | | | | | | | | | | | | | skipped: {h['reason']} |")
            continue
        w(f"| {h['name']} | {h['requests']} | {h['writes_ok']} | {h['reads_ok']} | {h['errors']} | "
          f"{h['lost']} | {h['phantom']} | {h['duplicates']} | {len(h['rsession_warnings'])} | "
          f"{h['php_warnings']} | {len(h['crashes'])} | {h['req_per_s']} | "
          f"{fmt(h['write_p50_ms'])}/{fmt(h['write_p99_ms'])} | {fmt(h['read_p50_ms'])}/{fmt(h.get('read_ini_p50_ms'))} | {h['verdict']} |")
        if h["verdict"] == "FAIL":
            failed.append(f"{h['name']}: " + "; ".join(h["problems"]))
        if h.get("note"):
            notes.append(f"- {h['name']}: {h['note']}")
        if h["problems"] and h["verdict"] != "FAIL":
            notes.append(f"- {h['name']}: " + "; ".join(h["problems"]))
        if h.get("provoked_warnings"):
            notes.append(f"- {h['name']}: {h['provoked_warnings']} provoked rsession warnings/notices (not counted above)")
        if h["error_kinds"]:
            kinds = ", ".join(f"{k} ×{v}" for k, v in sorted(h["error_kinds"].items()))
            notes.append(f"- {h['name']} errors: {kinds}")
        for line in h["rsession_warnings"][:3] + h["crashes"][:3] + h.get("php_warning_sample", [])[:2]:
            notes.append(f"  - `{line[:300]}`")
    w("")
    w("lost = successful increments (HTTP 200 + `OK <sid> <n>`) missing from the final counter; "
      "phantom = counter above successes + requests of unknown fate (timeouts, broken connections); "
      "dup. values = two successful increments that answered the same counter value. "
      "read p50 rac/ro: `read_and_close` (rsession, like files, takes the lock to read) / "
      "`rsession.read_only=1` (no lock; peers fall back to read_and_close).")
    if notes:
        w("")
        w("Notes:")
        w("")
        out.extend(notes)
    w("")
    w("## Fault injection")
    w("")
    w("| scenario | handler | verdict | detail |")
    w("|---|---|---|---|")
    names = {"kill9": "kill -9 a worker holding the lock", "fulldisk": "full disk (1 MB tmpfs)",
             "restart": "server stopped 3 s mid-load, restarted",
             "killload": "kill -9 a random worker every 0.5 s under load",
             "evict": "memcached full, evicting under load"}
    for f in faults:
        detail = f["detail"].replace("|", "\\|")
        if f["crashes"]:
            detail += "; crash: " + " / ".join(f["crashes"][:2])
        if f["unexpected_warnings"]:
            detail += "; unexpected warnings: " + " / ".join(x[:200] for x in f["unexpected_warnings"][:2])
        w(f"| {names.get(f['kind'], f['kind'])} | {f['name']} | {f['verdict']} | {detail} |")
        if f["verdict"] == "fail":
            failed.append(f"fault {f['kind']} on {f['name']}: {f['detail']}")
    w("")
    if failed:
        w("## Result: FAIL")
        w("")
        out.extend(f"- {x}" for x in failed)
    else:
        w("## Result: pass")
    w("")
    print("\n".join(out))
    return 1 if failed else 0


def main():
    if sys.argv[1] == "handler":
        d, name, kind, note = sys.argv[2:6]
        print(json.dumps(judge_handler(d, name, kind, note), indent=1))
        return 0
    if sys.argv[1] == "report":
        return report(sys.argv[2])
    return 2


if __name__ == "__main__":
    sys.exit(main())
