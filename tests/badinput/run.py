#!/usr/bin/env python3
"""The bad-input suite: a table of cases (cases.py), each run in a fresh
directory of its own. For every case:

  - the files it lists are created first (bytes, text, or numpy/h5py data);
  - its command runs with a time limit (a hang fails the case);
  - the exit code must be the expected one, and a negative code (a signal),
    a sanitizer report or "Segmentation" on stderr is a crash;
  - stderr must match the expected regex (which names the file and line or
    offset, and what was expected);
  - every file that existed before the command (the case's own and those
    it lists as `keep`) must be byte-identical after, and no "*.tmp" may be
    left behind.

Usage: run.py CTRAIN SOURCE_DIR [-j N] [-k NAME_REGEX] [-v]
Prints one line per failing case and "N passed, M failed, K skipped"."""
import argparse
import concurrent.futures as cf
import hashlib
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import cases as case_table  # noqa: E402

TIMEOUT = 120  # only a real hang exceeds this


def digest(path):
    with open(path, "rb") as f:
        return hashlib.sha256(f.read()).hexdigest()


def snapshot(root, extra):
    out = {}
    for d, _, files in os.walk(root):
        for f in files:
            p = os.path.join(d, f)
            if os.path.isfile(p):
                out[p] = digest(p)
    for p in extra:
        if os.path.isfile(p):
            out[p] = digest(p)
    return out


def expand(v, env):
    """{ctrain}, {w}, {src}, {ex} replaced; other braces (checkpoint
    templates such as ck-{epoch}.h5) stay."""
    if isinstance(v, str):
        return re.sub(r"\{(ctrain|w|src|ex)\}", lambda m: env[m.group(1)], v)
    return v


class Skip(Exception):
    pass


def run_case(case, ctrain, src, keep_dirs):
    name = case["name"]
    work = tempfile.mkdtemp(prefix="ct_bad_")
    env = {"w": work, "ctrain": ctrain, "src": src, "ex": os.path.join(src, "examples")}
    mounted = None
    try:
        if case.get("needs_non_root") and os.geteuid() == 0:
            raise Skip("root ignores file permissions")
        if case.get("needs") and not shutil.which(case["needs"]):
            raise Skip("%s is not installed" % case["needs"])
        if case.get("tmpfs"):
            if os.geteuid() != 0 or not shutil.which("mount"):
                raise Skip("full-disk case needs root for a tmpfs")
            mounted = os.path.join(work, "full")
            os.mkdir(mounted)
            r = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=%s" % case["tmpfs"], "tmpfs", mounted],
                               capture_output=True)
            if r.returncode != 0:
                mounted = None
                raise Skip("cannot mount a tmpfs: %s" % r.stderr.decode().strip())
        for rel, content in case.get("files", {}).items():
            p = os.path.join(work, rel)
            os.makedirs(os.path.dirname(p), exist_ok=True)
            if callable(content):
                content(p)
            else:
                data = expand(content, env) if isinstance(content, str) else content
                with open(p, "wb") as f:
                    f.write(data.encode() if isinstance(data, str) else data)
        for prep in case.get("prepare", []):
            r = subprocess.run([expand(a, env) for a in prep], cwd=work, capture_output=True, timeout=TIMEOUT)
            if r.returncode != 0:
                return "FAIL", "prepare %s exited %d: %s" % (prep, r.returncode, r.stderr.decode()[-400:])
        for rel, fn in case.get("post_files", {}).items():
            fn(os.path.join(work, rel))
        keep = [expand(p, env) for p in case.get("keep", [])]
        before = snapshot(work, keep)
        cmd = [expand(a, env) for a in case["cmd"]]
        run_env = dict(os.environ)
        run_env.update({k: expand(v, env) for k, v in case.get("env", {}).items()})
        run_env.setdefault("OMP_NUM_THREADS", "1")
        t0 = time.monotonic()
        if case.get("signal"):
            rc, out, err = run_with_signal(cmd, work, run_env, case["signal"], env)
        else:
            try:
                r = subprocess.run(cmd, cwd=work, capture_output=True, timeout=TIMEOUT, env=run_env,
                                   input=case.get("stdin", "").encode())
            except subprocess.TimeoutExpired:
                return "FAIL", "hung: no exit within %d s" % TIMEOUT
            rc, out, err = r.returncode, r.stdout.decode(errors="replace"), r.stderr.decode(errors="replace")
        took = time.monotonic() - t0
        problems = []
        want = case["code"] if isinstance(case["code"], (list, tuple)) else [case["code"]]
        if rc not in want:
            problems.append("exit code %d, expected %s" % (rc, " or ".join(str(w) for w in want)))
        if (rc < 0 and rc not in want) or re.search(r"Sanitizer|Segmentation fault|core dumped|HDF5-DIAG", err):
            problems.append("crashed")
        if "msg" in case and not re.search(expand(case["msg"], env), err, re.S):
            problems.append("stderr does not match /%s/" % expand(case["msg"], env))
        if "stdout" in case and not re.search(expand(case["stdout"], env), out, re.S | re.M):
            problems.append("stdout does not match /%s/" % expand(case["stdout"], env))
        if "not_stdout" in case and re.search(expand(case["not_stdout"], env), out, re.S | re.M):
            problems.append("stdout matches /%s/" % expand(case["not_stdout"], env))
        for rel in case.get("changes", []):  # files the case is meant to change (an appended log)
            before.pop(os.path.join(work, rel), None)
        for p, h in before.items():
            if not os.path.exists(p):
                problems.append("%s was removed" % os.path.relpath(p, work))
            elif digest(p) != h:
                problems.append("%s changed" % os.path.relpath(p, work))
        for d, _, files in os.walk(work):
            for f in files:
                if f.endswith(".tmp"):
                    problems.append("left %s behind" % os.path.relpath(os.path.join(d, f), work))
        if case.get("check_after"):
            r = subprocess.run([expand(a, env) for a in case["check_after"]], cwd=work, capture_output=True)
            if r.returncode != 0:
                problems.append("check after the run failed: %s" % " ".join(case["check_after"]))
        for rel in case.get("absent", []):
            if os.path.exists(os.path.join(work, expand(rel, env))):
                problems.append("%s exists" % rel)
        for rel in case.get("present", []):
            if not os.path.exists(os.path.join(work, expand(rel, env))):
                problems.append("%s was not written" % rel)
        if problems:
            return "FAIL", "; ".join(problems) + "\n    cmd: %s\n    stderr: %s" % (" ".join(cmd), err.strip()[-600:])
        return "ok", "%.1fs" % took
    except Skip as e:
        return "SKIPPED", str(e)
    except Exception as e:  # a broken case is a failure, not the end of the suite
        import traceback
        return "FAIL", "the case itself failed: %r\n%s" % (e, traceback.format_exc()[-800:])
    finally:
        if mounted:
            subprocess.run(["umount", mounted], capture_output=True)
        if not keep_dirs:
            shutil.rmtree(work, ignore_errors=True)


def run_with_signal(cmd, work, run_env, spec, env):
    """spec = (file glob that must appear, signal): send the signal as soon
    as a file matching the glob exists (so mid-write), then wait."""
    import glob
    pattern, sig = spec
    p = subprocess.Popen(cmd, cwd=work, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=run_env)
    deadline = time.monotonic() + TIMEOUT
    while time.monotonic() < deadline and p.poll() is None:
        if glob.glob(os.path.join(work, expand(pattern, env))):
            p.send_signal(sig)
            break
        time.sleep(0.001)
    try:
        out, err = p.communicate(timeout=TIMEOUT)
    except subprocess.TimeoutExpired:
        p.kill()
        out, err = p.communicate()
        return -999, out.decode(), "hung after the signal"
    return p.returncode, out.decode(errors="replace"), err.decode(errors="replace")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("ctrain")
    ap.add_argument("src")
    ap.add_argument("-j", type=int, default=2)
    ap.add_argument("-k", default="")
    ap.add_argument("-v", action="store_true")
    ap.add_argument("--keep", action="store_true", help="keep each case's directory")
    a = ap.parse_args()
    ctrain = os.path.abspath(a.ctrain)
    all_cases = case_table.cases(ctrain, os.path.abspath(a.src))
    names = [c["name"] for c in all_cases]
    dup = {n for n in names if names.count(n) > 1}
    if dup:
        print("duplicate case names: %s" % sorted(dup))
        return 1
    chosen = [c for c in all_cases if re.search(a.k, c["name"])]
    counts = {"ok": 0, "FAIL": 0, "SKIPPED": 0}
    classes = {}
    with cf.ThreadPoolExecutor(max_workers=a.j) as pool:
        futs = {pool.submit(run_case, c, ctrain, os.path.abspath(a.src), a.keep): c for c in chosen}
        for f in cf.as_completed(futs):
            c = futs[f]
            status, detail = f.result()
            counts[status] += 1
            classes.setdefault(c["name"].split("/")[0], 0)
            classes[c["name"].split("/")[0]] += 1
            if status != "ok" or a.v:
                print("%s %s: %s" % (status, c["name"], detail), flush=True)
    print("classes: " + ", ".join("%s %d" % kv for kv in sorted(classes.items())))
    print("%d passed, %d failed, %d skipped" % (counts["ok"], counts["FAIL"], counts["SKIPPED"]))
    return 1 if counts["FAIL"] else 0


if __name__ == "__main__":
    sys.exit(main())
