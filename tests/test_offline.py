"""The synthetic NIRCam program and its local CRDS cache, run by real jwst releases offline.

Everything runs in real environments (``real_env``): the generator with the release's own
python, CRDS in serverless mode, strun with HTTP(S) proxies pointing at a closed port so
that any network access fails loudly instead of silently succeeding.
"""

from __future__ import annotations

import json
import re
import subprocess
import textwrap
from pathlib import Path
from typing import Any

import pytest

from jwenv import scripts
from jwenv.crds import LocalCache

SCRIPT = scripts.path("make_program")

pytestmark = pytest.mark.integration

RELEASES = ["1.20.2", "3.0.0"]
NO_NETWORK = {  # CRDS uses requests, which honours these: any connection attempt fails
    "HTTP_PROXY": "http://127.0.0.1:9",
    "HTTPS_PROXY": "http://127.0.0.1:9",
    "http_proxy": "http://127.0.0.1:9",
    "https_proxy": "http://127.0.0.1:9",
    "NO_PROXY": "",
    "no_proxy": "",
}
# Steps that must run (and so need generated references) for a NIRCam imaging ramp.
DETECTOR1_COMPLETE = ["S_DQINIT", "S_SATURA", "S_IPC", "S_SUPERB", "S_REFPIX", "S_LINEAR",
                      "S_DARK", "S_JUMP", "S_RAMP"]
DETECTOR1_REFS = ["R_MASK", "R_SATURA", "R_SUPERB", "R_LINEAR", "R_DARK", "R_READNO",
                  "R_GAIN", "R_IPC"]


def _run(cmd: list[str], env: dict[str, str], cwd: Path | None = None,
         timeout: float = 600) -> subprocess.CompletedProcess[str]:
    """Run and fail with the output's tail (not a bare CalledProcessError)."""
    proc = subprocess.run([str(c) for c in cmd], env=env, cwd=cwd, capture_output=True,
                          text=True, timeout=timeout)
    if proc.returncode != 0:
        tail = "\n".join((proc.stdout + proc.stderr).splitlines()[-40:])
        pytest.fail(f"{cmd[:3]} exited {proc.returncode}:\n{tail}")
    return proc


def _offline_env(real: Any, info: dict[str, Any]) -> dict[str, str]:
    """What jwenv gives a run against the generated cache (crds.LocalCache), no network."""
    return real.environ(cache=LocalCache(Path(info["crds_path"]), info["context"]),
                        **NO_NETWORK)


def _generate(real: Any, out: Path) -> dict[str, Any]:
    env = {**real.env.environ(offline=True), **NO_NETWORK}  # as Env.run_script runs it
    proc = _run([real.python, SCRIPT, "--out", out, "--size", "64", "--seed", "0"], env)
    return json.loads(proc.stdout.strip().splitlines()[-1])


@pytest.fixture(scope="module")
def program(real_env, tmp_path_factory):
    """One generated program per release (generation takes ~8 s: imports)."""
    cache: dict[str, tuple[Any, dict[str, Any]]] = {}

    def get(version: str) -> tuple[Any, dict[str, Any]]:
        if version not in cache:
            real = real_env(version)
            out = tmp_path_factory.mktemp(f"program-{version}")
            cache[version] = (real, _generate(real, out))
        return cache[version]

    return get


def test_generator_layout_resolves_in_crds(program):
    real, info = program("1.20.2")
    crds_path = Path(info["crds_path"])
    assert info["context"] == "jwst_9000.pmap"
    assert (crds_path / "config" / "jwst" / "server_config").is_file()
    assert (crds_path / "mappings" / "jwst" / info["context"]).is_file()
    assert len(info["uncal"]) == 1 and info["uncal"][0].endswith("_uncal.fits")
    assert Path(info["uncal"][0]).is_file()
    assert {"mask", "saturation", "superbias", "linearity", "dark", "readnoise", "gain",
            "ipc"} <= set(info["reference_types"])

    probe = textwrap.dedent("""
        import json, sys
        import crds
        try:
            from stdatamodels.jwst import datamodels
        except ImportError:
            from jwst import datamodels
        info = json.loads(sys.argv[1])
        pmap = crds.get_cached_mapping(info["context"])
        with datamodels.open(info["uncal"][0]) as model:
            params = model.get_crds_parameters()
        refs = crds.getreferences(params, reftypes=info["reference_types"] + ["flat"],
                                  context=info["context"], observatory="jwst")
        print(json.dumps({"name": pmap.name, "mappings": sorted(pmap.mapping_names()),
                          "refs": refs}))
    """)
    proc = _run([real.python, "-c", probe, json.dumps(info)], _offline_env(real, info))
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    assert result["name"] == info["context"]
    assert "jwst_nircam_9000.imap" in result["mappings"]
    refs = result["refs"]
    assert "N/A" in refs.pop("flat").upper()  # unneeded types are N/A, not errors
    assert sorted(refs) == sorted(info["reference_types"])
    refdir = crds_path / "references" / "jwst" / "nircam"
    for reftype, path in refs.items():
        assert Path(path).is_file(), (reftype, path)
        assert Path(path).parent == refdir, (reftype, path)
        assert f"_{reftype}_" in Path(path).name


@pytest.mark.parametrize("version", RELEASES)
def test_detector1_offline(program, version, tmp_path):
    real, info = program(version)
    out = tmp_path / "out"
    out.mkdir()  # some releases' strun does not create --output_dir
    uncal = Path(info["uncal"][0])
    _run([real.bin / "strun", "jwst.pipeline.Detector1Pipeline", uncal, "--output_dir", out],
         _offline_env(real, info), cwd=tmp_path)

    from astropy.io import fits

    rate = out / uncal.name.replace("_uncal.fits", "_rate.fits")
    assert rate.is_file(), sorted(p.name for p in out.iterdir())
    with fits.open(rate) as hdul:
        header = hdul[0].header
        sci = hdul["SCI"].data
    assert header["CAL_VER"] == version
    assert header["CRDS_CTX"] == info["context"]
    statuses = {k: header[k] for k in header if k.startswith("S_")}
    assert all(statuses.get(k) == "COMPLETE" for k in DETECTOR1_COMPLETE), statuses
    refs = {k: header[k] for k in header if k.startswith("R_")}
    assert set(DETECTOR1_REFS) <= set(refs), refs
    generated = {p.name for p in (Path(info["crds_path"]) / "references").rglob("*.fits")}
    for key, value in refs.items():
        if value.upper() != "N/A":
            assert value.removeprefix("crds://") in generated, (key, value)

    # The rate image is meaningful: a ~150 DN/s sky, point sources above it, NaN only on
    # the reference-pixel border and the two dead pixels.
    import numpy as np

    assert sci.shape == (64, 64)
    inner = sci[4:, 4:]
    assert 135 < np.nanmedian(inner) < 165
    assert np.nanmax(inner) > 20 * np.nanmedian(inner)
    assert int(np.isnan(sci).sum()) == 64 * 4 * 2 - 16 + 2


# The full program (Detector1 -> Image2 -> Image3, catalog against the truth table) runs
# through `jwenv reprocess` under 1.20.2 and 3.0.0 in tests/test_reprocess.py.


# -- the whole program: several observations and filters -------------------------------
WHOLE = ["--program", "--observations", "2", "--filters", "F150W,F200W", "--dithers", "2"]
DMS_NAME = re.compile(r"^jw(?P<program>\d{5})(?P<observation>\d{3})(?P<visit>\d{3})_"
                      r"(?P<group>\d{2})(?P<seq>\d)(?P<activity>\w{2})_(?P<exposure>\d{5})_"
                      r"(?P<detector>nrcb1)_uncal\.fits$")


@pytest.fixture(scope="module")
def whole_program(real_env, tmp_path_factory):
    """The whole program, generated once by 1.20.2 (~10 s)."""
    real = real_env("1.20.2")
    out = tmp_path_factory.mktemp("whole-program")
    env = {**real.env.environ(offline=True), **NO_NETWORK}  # as Env.run_script runs it
    proc = _run([real.python, SCRIPT, "--out", out, *WHOLE], env)
    return real, json.loads(proc.stdout.strip().splitlines()[-1])


def test_whole_program_report_and_headers(whole_program):
    from astropy.io import fits
    from astropy.table import Table

    _, info = whole_program
    assert info["filters"] == ["F150W", "F200W"] and info["dithers"] == 2
    assert info["size"] == 400 and info["subarray"] == "SUB400P"
    observations = info["observations"]
    assert [o["observation"] for o in observations] == ["001", "002"]
    targets = [o["target"] for o in observations]
    assert len({t["targprop"] for t in targets}) == len({t["targname"] for t in targets}) == 2
    assert len({(round(t["ra"], 3), round(t["dec"], 3)) for t in targets}) == 2
    science = [p for o in observations for p in o["exposures"]]
    assert len(science) == 2 * 2 * 2 and len(info["background"]) == 2  # one per filter
    assert sorted(info["uncal"]) == sorted(science + info["background"])
    assert all(Path(p).is_file() for p in info["uncal"])
    # jwenv makes the associations with the release's rules: none is written here
    assert not list(Path(info["uncal"][0]).parent.glob("*_asn.json"))
    assert "stages" not in info and "asn" not in info

    starts: list[float] = []
    for path in map(Path, info["uncal"]):
        header = fits.getheader(path)
        name = DMS_NAME.match(path.name)
        assert name, path.name
        assert header["FILENAME"] == path.name
        assert (header["PROGRAM"], header["OBSERVTN"], header["VISIT"], header["ACT_ID"]) == (
            name["program"], name["observation"], name["visit"], name["activity"])
        assert int(header["EXPOSURE"]) == int(name["exposure"])
        assert header["VISIT_ID"] == name["program"] + name["observation"] + name["visit"]
        assert header["OBS_ID"].startswith("V" + header["VISIT_ID"] + "P")
        assert header["OBS_ID"].endswith(name["group"] + name["seq"] + name["activity"])
        assert (header["INSTRUME"], header["DETECTOR"], header["EXP_TYPE"], header["PUPIL"],
                header["SUBARRAY"]) == ("NIRCAM", "NRCB1", "NRC_IMAGE", "CLEAR", "SUB400P")
        assert header["FILTER"] in info["filters"]
        assert header["BKGDTARG"] is (str(path) in info["background"])
        assert header["DATE-OBS"] and header["TIME-OBS"]
        starts.append(header["EXPSTART"])
    assert starts == sorted(starts) and len(set(starts)) == len(starts)  # one detector, in order

    for obs, target in zip(observations, targets):  # noqa: B905
        assert set(obs["by_filter"]) == {"F150W", "F200W"}
        for filt, paths in obs["by_filter"].items():
            assert len(paths) == 2
            for path in paths:
                header = fits.getheader(path)
                assert (header["FILTER"], header["OBSERVTN"]) == (filt, obs["observation"])
                assert (header["TARGPROP"], header["TARGNAME"]) == (target["targprop"],
                                                                    target["targname"])
        assert obs["pointing_error_file"] in obs["exposures"]
        truth = Table.read(obs["truth"], format="ascii.ecsv")
        assert Path(obs["truth"]).name == f"truth_o{obs['observation']}.ecsv"
        assert len(truth) == obs["stars"] >= 15
        assert {"ra", "dec", "flux_dn_s_f150w", "flux_dn_s_f200w"} <= set(truth.colnames)
        assert abs(float(truth["dec"].mean()) - target["dec"]) < 0.01  # stars on its own field


def test_whole_program_resolves_in_crds_for_every_filter(whole_program):
    """Every generated type resolves for every exposure (both filters, the backgrounds);
    the flat differs per filter, the tables serve both."""
    real, info = whole_program
    probe = textwrap.dedent("""
        import json, sys
        import crds
        from stdatamodels.jwst import datamodels
        info = json.loads(sys.argv[1])
        out = {}
        for path in info["uncal"]:
            with datamodels.open(path) as model:
                params = model.get_crds_parameters()
                filt = model.meta.instrument.filter
            out[path] = {"filter": filt, "refs": crds.getreferences(
                params, reftypes=info["reference_types"], context=info["context"],
                observatory="jwst")}
        print(json.dumps(out))
    """)
    proc = _run([real.python, "-c", probe, json.dumps(info)], _offline_env(real, info))
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    assert sorted(result) == sorted(info["uncal"])
    assert {"flat", "photom", "area", "apcorr", "abvegaoffset", "filteroffset", "distortion",
            "mask", "gain", "linearity"} <= set(info["reference_types"])
    by_filter: dict[str, dict[str, set[str]]] = {}
    for found in result.values():
        refs = found["refs"]
        assert sorted(refs) == sorted(info["reference_types"])
        for reftype, path in refs.items():
            assert Path(path).is_file(), (reftype, path)
            by_filter.setdefault(found["filter"], {}).setdefault(reftype, set()).add(
                Path(path).name)
    assert sorted(by_filter) == ["F150W", "F200W"]
    for filt, refs in by_filter.items():
        assert all(len(names) == 1 for names in refs.values()), (filt, refs)  # one per filter
    flats = {filt: refs["flat"] for filt, refs in by_filter.items()}
    assert flats["F150W"] != flats["F200W"]
    assert by_filter["F150W"]["photom"] == by_filter["F200W"]["photom"]

    # The tables in the shared files hold a row for each filter (photom values differ).
    from astropy.table import Table

    refdir = Path(info["crds_path"]) / "references" / "jwst" / "nircam"
    photom = Table.read(refdir / by_filter["F150W"]["photom"].pop(), hdu="PHOTOM")
    values = {row["filter"].strip(): float(row["photmjsr"]) for row in photom}
    assert {"F150W", "F200W"} <= set(values) and values["F150W"] != values["F200W"]
    apcorr = Table.read(refdir / by_filter["F150W"]["apcorr"].pop(), hdu="APCORR")
    assert {"F150W", "F200W"} <= {f.strip() for f in apcorr["filter"]}
