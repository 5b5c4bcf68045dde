"""A warm worker: import jwst's pipelines once, then run many strun jobs in this process.

Run by a managed environment's python (never imports jwenv); Python 3.6+.

    python worker.py        (driven through its stdin/stdout by jwenv.workers)

Protocol: JSON lines. Its first stdout line is
    {"ready": true, "jwst": "3.0.0", "import_s": 6.8, "rss": BYTES, "pid": N}
then for each job line on stdin
    {"id": "...", "argv": ["jwst.pipeline.Detector1Pipeline", INPUT, "--output_dir", DIR, ...],
     "log": "/abs/job.log", "cwd": "/abs/dir"}
it answers
    {"id": "...", "ok": true, "seconds": 3.2, "peak_rss": BYTES, "rss": BYTES, "error": null}
and exits when stdin closes.

A job runs exactly what `strun ARGV` runs (stpipe's Step.from_cmdline, in-process), so
parameter reference files, --disable-crds-steppars and config files behave as with
strun; Pipeline.run() would ignore parameter references (jwst#7771). Everything the
pipeline writes to fd 1 and fd 2 goes to the job's log; protocol lines go to a private
copy of the original stdout, so nothing a library prints can corrupt them.
peak_rss is the job's own peak: the kernel's high-water mark is reset before each job.
"""

import gc
import json
import os
import sys
import time
import traceback

_PROTO = None


def _status(field):
    try:
        with open("/proc/self/status") as fh:
            for line in fh:
                if line.startswith(field + ":"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return None


def _reset_peak():
    try:  # Linux: "5" resets VmHWM to the current RSS
        with open("/proc/self/clear_refs", "w") as fh:
            fh.write("5")
    except OSError:
        pass


def emit(obj):
    _PROTO.write(json.dumps(obj) + "\n")
    _PROTO.flush()


class LogTo(object):
    """fd 1 and fd 2 to the job's log while it runs."""

    def __init__(self, path):
        self.path = path

    def __enter__(self):
        sys.stdout.flush()
        sys.stderr.flush()
        self.saved = os.dup(2)
        fd = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
        os.dup2(fd, 2)
        os.dup2(fd, 1)
        os.close(fd)
        return self

    def __exit__(self, *exc):
        sys.stdout.flush()
        sys.stderr.flush()
        os.dup2(self.saved, 2)
        os.dup2(self.saved, 1)  # between jobs fd 1 points at the worker's stderr
        os.close(self.saved)
        return False


def run_job(job):
    from jwst.stpipe import Step

    error = None
    cwd = os.getcwd()
    with LogTo(job["log"]):
        try:
            if job.get("cwd"):
                os.chdir(job["cwd"])
            Step.from_cmdline(list(job["argv"]))
        except SystemExit as exc:  # stpipe exits on some errors
            if exc.code not in (0, None):
                traceback.print_exc()
                error = "SystemExit({})".format(exc.code)
        except BaseException as exc:  # report, keep serving
            traceback.print_exc()
            text = str(exc).strip().splitlines()
            error = "{}: {}".format(type(exc).__name__, text[0] if text else "").strip()
        finally:
            os.chdir(cwd)
    return error


def main():
    global _PROTO
    _PROTO = os.fdopen(os.dup(1), "w")
    os.dup2(2, 1)
    import warnings

    warnings.simplefilter("ignore")
    t0 = time.time()
    import jwst
    import jwst.pipeline
    from jwst.stpipe import Step  # noqa: F401  (imported with the pipelines)

    # stpipe runs gc.collect() after every step; with the whole of jwst imported each
    # full collection walks ~1e6 objects (~0.13 s, 2 s of a small Detector1). Frozen,
    # the imported objects (which live as long as the process anyway) are skipped.
    gc.collect()
    if hasattr(gc, "freeze"):  # Python >= 3.7
        gc.freeze()
    emit({"ready": True, "jwst": jwst.__version__, "import_s": round(time.time() - t0, 2),
          "rss": _status("VmRSS"), "pid": os.getpid()})
    for line in sys.stdin:
        if not line.strip():
            continue
        job = json.loads(line)
        _reset_peak()
        t = time.time()
        error = run_job(job)
        gc.collect()
        emit({"id": job.get("id"), "ok": error is None, "seconds": round(time.time() - t, 3),
              "peak_rss": _status("VmHWM"), "rss": _status("VmRSS"), "error": error})
    return 0


if __name__ == "__main__":
    sys.exit(main())
