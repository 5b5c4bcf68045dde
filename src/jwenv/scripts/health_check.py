"""Health check, run by an environment's own python (never imported by jwenv).

Usage: python health_check.py LEVEL WORKDIR   (LEVEL: import | full)
Prints one JSON object on its last stdout line: {"ok": bool, "checks": [...]}.
Works on Python 3.6+ and on jwst releases from 0.9 on, so it uses only the
standard library plus what the release itself has.
"""

import importlib
import json
import os
import subprocess
import sys
import time

PIPELINES = ["Detector1Pipeline", "Image2Pipeline", "Image3Pipeline", "Spec2Pipeline",
             "Spec3Pipeline"]


def check(checks, name, func):
    t0 = time.time()
    try:
        detail = func()
        checks.append({"check": name, "ok": True, "detail": detail,
                       "seconds": round(time.time() - t0, 2)})
        return True
    except BaseException as exc:
        msg = "{}: {}".format(type(exc).__name__, exc).strip()
        checks.append({"check": name, "ok": False, "detail": msg.splitlines()[-1][:300],
                       "seconds": round(time.time() - t0, 2)})
        return False


def import_jwst():
    import jwst
    return jwst.__version__


def import_pipelines():
    mod = importlib.import_module("jwst.pipeline")
    found = [p for p in PIPELINES if hasattr(mod, p)]
    if "Detector1Pipeline" not in found:
        raise ImportError("jwst.pipeline has no Detector1Pipeline")
    return found


def strun_runs():
    """strun starts and parses arguments (some releases exit 2 on --help alone)."""
    out = subprocess.run(["strun", "--help"], stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                         universal_newlines=True, timeout=600)
    if "usage" not in out.stdout.lower():
        raise RuntimeError("strun --help exited {}: {}".format(
            out.returncode, (out.stdout.strip().splitlines() or [""])[-1]))
    return True


def datamodels():
    try:
        from stdatamodels.jwst import datamodels as dm
    except ImportError:
        from jwst import datamodels as dm
    return dm


def tiny_exposure(path):
    """1 integration x 3 groups x 8x8 NIRCam ramp that GroupScaleStep really rescales."""
    import warnings

    with warnings.catch_warnings():
        # Old schemas do not know every subarray name: validation warnings are noise here.
        warnings.simplefilter("ignore")
        return _tiny_exposure(path)


def _tiny_exposure(path):
    import numpy as np
    dm = datamodels()
    model = dm.RampModel(data=np.full((1, 3, 8, 8), 100.0, dtype=np.float32))
    model.meta.instrument.name = "NIRCAM"
    model.meta.instrument.detector = "NRCB1"
    model.meta.instrument.filter = "F200W"
    model.meta.instrument.pupil = "CLEAR"
    model.meta.exposure.type = "NRC_IMAGE"
    model.meta.exposure.readpatt = "BRIGHT2"
    model.meta.exposure.nframes = 2
    model.meta.exposure.frame_divisor = 4
    model.meta.exposure.ngroups = 3
    model.meta.exposure.nints = 1
    model.meta.observation.date = "2023-01-01"
    model.meta.observation.time = "00:00:00"
    try:
        model.meta.subarray.name = "SUB8"
    except Exception:  # schemas of 0.8-0.9 refuse names they do not know (not a warning)
        model.meta.subarray.name = "GENERIC"
    model.meta.subarray.xstart = 1
    model.meta.subarray.ystart = 1
    model.meta.subarray.xsize = 8
    model.meta.subarray.ysize = 8
    model.meta.filename = os.path.basename(path)
    model.save(path)
    return path


STUB_CONTEXT = "jwst_0001.pmap"
STUB_SERVER_CONFIG = {
    "observatory": "jwst", "operational_context": STUB_CONTEXT, "edit_context": STUB_CONTEXT,
    "versions_context": STUB_CONTEXT, "bad_files": "", "bad_files_list": [],
    "crds_version": {"str": "0.0.0"}, "force_remote_mode": False,
    "last_synced": "2000-01-01 00:00:00", "reference_url": {}, "mapping_url": {},
}
STUB_PMAP = """header = {
    'derived_from' : 'jwenv health check: selects nothing',
    'mapping' : 'PIPELINE',
    'name' : '%s',
    'observatory' : 'JWST',
    'parkey' : (('META.INSTRUMENT.NAME',),),
    'sha1sum' : '0000000000000000000000000000000000000000',
}

selector = {
}
""" % STUB_CONTEXT


def stub_crds_env(workdir):
    """A private CRDS cache that selects nothing, for CRDS clients that cannot start offline.

    Old CRDS (e.g. 7.4, with jwst 0.15) reads config/jwst/server_config from the cache
    whenever the server is unreachable and exits when it is missing; old strun always
    asks CRDS for step parameters. GroupScaleStep needs no reference file, so an empty
    pipeline mapping is enough. Never written to the user's CRDS_PATH. jwenv runs this
    script offline (CRDS_SERVER_URL already names serverless mode: jwenv.crds).
    """
    root = os.path.join(workdir, "crds-stub")
    for sub in ("config/jwst", "mappings/jwst"):
        path = os.path.join(root, sub)
        if not os.path.isdir(path):
            os.makedirs(path)
    with open(os.path.join(root, "config", "jwst", "server_config"), "w") as fh:
        fh.write(repr(STUB_SERVER_CONFIG))
    with open(os.path.join(root, "mappings", "jwst", STUB_CONTEXT), "w") as fh:
        fh.write(STUB_PMAP)
    env = dict(os.environ)
    env.update({"CRDS_PATH": root, "CRDS_CONTEXT": STUB_CONTEXT,
                "CRDS_IGNORE_MAPPING_CHECKSUM": "1", "CRDS_READONLY_CACHE": "1"})
    return env


def run_strun(cmd, workdir, env):
    # Parameter reference files need CRDS; releases that have them accept this flag.
    for extra in (["--disable-crds-steppars"], []):
        out = subprocess.run(cmd + extra, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                             universal_newlines=True, timeout=600, cwd=workdir, env=env)
        if "unrecognized arguments" not in out.stdout:
            break
    return out


def run_step(workdir):
    uncal = tiny_exposure(os.path.join(workdir, "jwenv_health_uncal.fits"))
    outdir = os.path.join(workdir, "out")
    if not os.path.isdir(outdir):
        os.makedirs(outdir)  # some releases' strun does not create --output_dir
    cmd = ["strun", "jwst.group_scale.GroupScaleStep", uncal, "--output_dir", outdir]
    out = run_strun(cmd, workdir, None)
    crds_mode = "as configured"
    if out.returncode != 0 and "CRDS - ERROR" in out.stdout:
        # The release's CRDS client cannot start without a server or a cache: judge the
        # software, not the CRDS set-up, with a private cache that selects nothing.
        out = run_strun(cmd, workdir, stub_crds_env(workdir))
        crds_mode = "private stub cache (this CRDS client needs a cache to run offline)"
    if out.returncode != 0:
        lines = [ln for ln in out.stdout.splitlines() if ln.strip()]
        raise RuntimeError("GroupScaleStep exited {}: {}".format(
            out.returncode, lines[-1] if lines else ""))
    products = [f for f in os.listdir(outdir) if f.endswith(".fits")]
    if not products:
        raise RuntimeError("GroupScaleStep wrote no product")
    from astropy.io import fits
    with fits.open(os.path.join(outdir, products[0])) as hdul:
        data = hdul["SCI"].data
        header = hdul[0].header
        if abs(float(data[0, 0, 0, 0]) - 200.0) > 1e-3:
            raise RuntimeError("GroupScaleStep did not rescale: {}".format(data[0, 0, 0, 0]))
        return {"product": products[0], "CAL_VER": header.get("CAL_VER"),
                "S_GRPSCL": header.get("S_GRPSCL"), "crds": crds_mode}


def main():
    level = sys.argv[1] if len(sys.argv) > 1 else "full"
    workdir = sys.argv[2] if len(sys.argv) > 2 else os.getcwd()
    checks = []
    ok = check(checks, "import jwst", import_jwst)
    ok = ok and check(checks, "import pipelines", import_pipelines)
    if level == "full" and ok:
        ok = check(checks, "strun", strun_runs)
        ok = ok and check(checks, "GroupScaleStep on a tiny exposure", lambda: run_step(workdir))
    version = checks[0]["detail"] if checks and checks[0]["ok"] else None
    print(json.dumps({"ok": bool(ok), "level": level, "jwst_version": version,
                      "python": "{}.{}.{}".format(*sys.version_info[:3]), "checks": checks}))
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
