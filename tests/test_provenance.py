"""`jwenv.provenance`: what made each product, from its headers and its processing log.

Unit tests build small products with astropy whose headers, HDRTAB and ASDF extension are
shaped like real ones (the YAML below is trimmed from a jwst 3.0.0 rate product); the
integration tests make real products under 3.0.0 and read them back.
"""

from __future__ import annotations

import gzip
import json
import re
import shutil
from pathlib import Path

import numpy as np
import pytest
import yaml
from astropy.io import fits

from helpers import archive_env, jwenv
from jwenv import provenance as pv
from jwenv.errors import BadInput

CONTEXT = "jwst_1413.pmap"
UNCAL = "jw01234001001_01101_00001_nrcb1_uncal.fits"

# -- products shaped like real ones -------------------------------------------------------
ASDF_HEAD = """#ASDF 1.0.0
#ASDF_STANDARD 1.6.0
%YAML 1.1
%TAG ! tag:stsci.edu:asdf/
--- !core/asdf-1.1.0
asdf_library: !core/software-1.0.0 {author: The ASDF Developers, homepage: 'http://github.com/asdf-format/asdf',
  name: asdf, version: 5.3.1}
history:
  extensions:
  - !core/extension_metadata-1.0.0
    extension_class: asdf.extension._manifest.ManifestExtension
    extension_uri: asdf://asdf-format.org/core/extensions/core-1.6.0
    manifest_software: !core/software-1.0.0 {name: asdf_standard, version: 1.5.0}
    software: !core/software-1.0.0 {name: asdf, version: 5.3.1}
_fits_hash: 621f759947e34639c8d8ab27b9fa495ce8f9108a340da1076de20e3af4e84deb
area: !core/ndarray-1.1.0
  source: fits:AREA,1
  datatype: float32
  byteorder: big
  shape: [400, 400]
"""
ASDF_TAIL = """data: !core/ndarray-1.1.0
  source: fits:SCI,1
  datatype: float32
  byteorder: big
  shape: [400, 400]
meta:
  aperture: {name: NRCB1_SUB400P}
  cal_step: {dark_sub: COMPLETE, jump: COMPLETE, ramp_fit: COMPLETE}
  calibration_software_version: 3.0.0
...
"""
# an ASDF binary block after the YAML: never read
BLOCK = b"\xd3BLK" + bytes(range(256)) * 4

PARAMETERS = {
    "pre_hooks": [], "post_hooks": [], "output_file": None, "output_dir": "3.0.0",
    "output_ext": ".fits", "output_use_model": False, "output_use_index": True,
    "save_results": True, "skip": False, "suffix": None, "search_output_file": True,
    "input_dir": "data", "save_calibrated_ramp": False,
    "steps": {
        "jump": {"pre_hooks": [], "output_dir": None, "save_results": False, "skip": False,
                 "input_dir": "data", "rejection_threshold": 5.0,
                 "maximum_cores": "1", "flag_4_neighbors": True, "edge_size": 25},
        "ramp_fit": {"skip": False, "algorithm": "OLS_C", "weighting": "optimal",
                     "maximum_cores": "1", "save_opt": False},
    },
}


def stpipe_parameters_record(name: str, pars: dict) -> str:
    """The message stpipe logs (stpipe/step.py, Step.run, 0.8 to 1.0)."""
    return f"Step {name} parameters are:" + "\n  " + "\n  ".join(
        yaml.dump(pars, sort_keys=False).strip().replace(" false", " False")
        .replace(" true", " True").replace(" null", " None").splitlines())


def record(message: str, logger: str = "stpipe.step", level: str = "INFO",
           when: str = "2025-06-01T12:00:00.123") -> str:
    return f"{when} - {logger} - {level} - {message}"


def detector1_log(pars: dict = PARAMETERS, pars_file: str | None = None) -> list[str]:
    log = []
    if pars_file:
        log.append(record(f"PARS-JUMPSTEP parameters found: {pars_file}"))
    log += [
        record("Detector1Pipeline instance created."),
        record("JumpStep instance created."),
        record(f"Step Detector1Pipeline running with args ('{UNCAL}',)."),
        record(stpipe_parameters_record("Detector1Pipeline", pars)),
        record("Prefetch for DARK reference file is 'jwst_nircam_dark_0342.fits'.",
               "stpipe.pipeline"),
        record(f"Step jump running with args (<RampModel(1, 5, 400, 400) from {UNCAL}>,)."),
        record("CR rejection threshold = 5 sigma", "jwst.jump.jump_step"),
        record("Step jump done"),
        record("Step ramp_fit running with args (<RampModel(1, 5, 400, 400) from x.fits>,)."),
        record("Step ramp_fit done"),
        record(f"Results used CRDS context: {CONTEXT}", "jwst.stpipe.core"),
    ]
    return log


def asdf_bytes(cal_logs: dict | None) -> bytes:
    middle = "" if cal_logs is None else yaml.safe_dump(
        {"cal_logs": cal_logs}, default_flow_style=None, sort_keys=False)
    return (ASDF_HEAD + middle + ASDF_TAIL).encode() + BLOCK


def product(path: Path, *, release: str = "3.0.0", cal_logs: dict | None = None,
            asdf: bool = True, hdrtab: fits.BinTableHDU | None = None, **header) -> Path:
    """A small calibrated product as jwst writes it: primary, SCI, [HDRTAB], ASDF."""
    cards = {"TELESCOP": "JWST", "FILENAME": path.name, "SDP_VER": "2025_1",
             "CAL_VER": release, "CAL_VCS": "RELEASE", "DATAMODL": "ImageModel",
             "CRDS_VER": "12.1.5", "CRDS_CTX": CONTEXT,
             "R_DARK": "crds://jwst_nircam_dark_0342.fits",
             "R_FLAT": "crds://jwst_nircam_flat_0123.fits", "R_CAMERA": "N/A",
             "S_JUMP": "COMPLETE", "S_TWKREG": "SKIPPED", "S_RAMP": "FAILED"}
    cards.update(header)
    primary = fits.PrimaryHDU()
    for key, value in cards.items():
        if value is not None:
            primary.header[key] = value
    hdus = [primary, fits.ImageHDU(np.zeros((8, 8), "f4"), name="SCI")]
    hdus[1].header["S_REGION"] = "POLYGON ICRS " + " ".join(["53.160705081"] * 8)
    if hdrtab is not None:
        hdus.append(hdrtab)
    if asdf:
        raw = np.frombuffer(asdf_bytes(cal_logs), np.uint8)
        hdus.append(fits.BinTableHDU.from_columns(
            [fits.Column(name="ASDF_METADATA", format=f"{raw.size}B", array=raw[None, :])],
            name="ASDF"))
    path.parent.mkdir(parents=True, exist_ok=True)
    fits.HDUList(hdus).writeto(path)
    return path


def header_table(rows: list[dict]) -> fits.BinTableHDU:
    """An HDRTAB: one row per input; columns of several kinds (numbers, logicals, a
    variable-length array with a heap) between the character columns read."""
    n = len(rows)
    cols = [
        fits.Column(name="DATE", format="23A", array=["2025-06-01T12:00:00.000"] * n),
        fits.Column(name="FILENAME", format="45A", array=[r["FILENAME"] for r in rows]),
        fits.Column(name="TARG_RA", format="D", array=np.arange(n, dtype="f8")),
        fits.Column(name="BKGDTARG", format="L", array=[False] * n),
        fits.Column(name="NINTS", format="K", array=np.ones(n, "i8")),
        fits.Column(name="DQFLAGS", format="3X", array=np.zeros((n, 3), bool)),
        fits.Column(name="VARRAY", format="PJ()",
                    array=np.array([np.arange(i + 1, dtype="i4") for i in range(n)],
                                   dtype=object)),
        *(fits.Column(name=k, format="16A", array=[r.get(k, "") for r in rows])
          for k in ("SDP_VER", "CAL_VER", "CAL_VCS", "CRDS_VER", "CRDS_CTX")),
        fits.Column(name="VA_SCALE", format="E", array=np.ones(n, "f4")),
    ]
    return fits.BinTableHDU.from_columns(cols, name="HDRTAB")


def one_line(exc: pytest.ExceptionInfo) -> str:
    text = str(exc.value)
    assert "\n" not in text and text
    return text


# -- reading --------------------------------------------------------------------------------
def test_a_product_reads_exactly(tmp_path):
    path = product(tmp_path / "a_rate.fits", cal_logs={
        "calwebb_detector1": detector1_log(pars_file="jwst_nircam_pars-jumpstep_0021.asdf")})
    p = pv.read(path)
    assert (p.kind, p.release, p.commit, p.crds_version, p.crds_context, p.sdp_version,
            p.datamodel) == ("calibrated", "3.0.0", "RELEASE", "12.1.5", CONTEXT, "2025_1",
                             "ImageModel")
    assert p.references == {"dark": "crds://jwst_nircam_dark_0342.fits",
                            "flat": "crds://jwst_nircam_flat_0123.fits"}
    assert p.reference_keywords == {"dark": "R_DARK", "flat": "R_FLAT"}
    assert p.not_applicable == ["R_CAMERA"]
    assert p.steps == {"S_JUMP": "COMPLETE", "S_TWKREG": "SKIPPED", "S_RAMP": "FAILED"}
    assert (p.completed, p.skipped, p.failed) == (["S_JUMP"], ["S_TWKREG"], ["S_RAMP"])
    (log,) = p.logs
    assert (log.name, log.step, log.input, log.crds_context, log.records, log.note) == (
        "calwebb_detector1", "Detector1Pipeline", UNCAL, CONTEXT, 12, None)
    assert log.parameters == PARAMETERS
    assert p.pars_files == {"calwebb_detector1": {
        "pars-jumpstep": "jwst_nircam_pars-jumpstep_0021.asdf"}}
    assert p.parameters["calwebb_detector1"]["steps"]["jump"]["rejection_threshold"] == 5.0
    assert p.log_note is None and p.inputs is None and p.inputs_agree is None
    d = p.to_dict()
    assert json.loads(json.dumps(d)) == d
    assert d["failed"] == ["S_RAMP"] and d["logs"][0]["parameters"] == PARAMETERS


def test_references_are_typed_by_keyword_else_by_name(tmp_path):
    long = "crds://" + "x" * 70 + "/jwst_miri_fringefreq_0007.fits"  # CONTINUE cards
    p = pv.read(product(tmp_path / "r_cal.fits", R_READNO="crds://jwst_nircam_readnoise_1.fits",
                        R_NEWREF="crds://jwst_nircam_sirskernel_0002.asdf",
                        R_ODDREF="my_own_file.fits", R_FRIFRQ=long, cal_logs={}))
    assert p.references["readnoise"] == "crds://jwst_nircam_readnoise_1.fits"
    assert p.references["sirskernel"] == "crds://jwst_nircam_sirskernel_0002.asdf"
    assert p.reference_keywords["sirskernel"] == "R_NEWREF"
    assert p.references["oddref"] == "my_own_file.fits"
    assert p.references["fringefreq"] == long
    assert "S_REGION" not in p.steps


def test_a_level3_product_lists_its_inputs_and_their_disagreements(tmp_path):
    rows = [{"FILENAME": "jw01234001001_01101_00001_nrcb1_o001_crf.fits", "SDP_VER": "2025_1",
             "CAL_VER": "3.0.0", "CAL_VCS": "RELEASE", "CRDS_VER": "12.1.5",
             "CRDS_CTX": CONTEXT},
            {"FILENAME": "jw01234001001_01101_00002_nrcb1_o001_crf.fits", "SDP_VER": "2025_1",
             "CAL_VER": "1.20.2", "CAL_VCS": "RELEASE", "CRDS_VER": "12.1.5",
             "CRDS_CTX": "jwst_1364.pmap"},
            {"FILENAME": "jw01234001001_01101_00003_nrcb1_o001_crf.fits", "SDP_VER": "2025_1",
             "CAL_VER": "3.0.0", "CAL_VCS": "RELEASE", "CRDS_VER": "12.1.5",
             "CRDS_CTX": CONTEXT}]
    path = product(tmp_path / "jw01234-o001_t001_nircam_clear-f200w_i2d.fits",
                   hdrtab=header_table(rows), cal_logs={"calwebb_image3": []})
    p = pv.read(path)
    assert [i.to_dict() for i in p.inputs] == [
        {"filename": r["FILENAME"], "release": r["CAL_VER"], "commit": "RELEASE",
         "crds_version": "12.1.5", "crds_context": r["CRDS_CTX"], "sdp_version": "2025_1"}
        for r in rows]
    a, b, c = (r["FILENAME"] for r in rows)
    assert p.disagreements == {"CAL_VER": {"3.0.0": [a, c], "1.20.2": [b]},
                               "CRDS_CTX": {CONTEXT: [a, c], "jwst_1364.pmap": [b]}}
    assert p.inputs_agree is False
    # the rows are read from bytes: the same as astropy's table
    with fits.open(path) as hdul:
        assert [i.filename for i in p.inputs] == list(hdul["HDRTAB"].data["FILENAME"])
    agreeing = pv.read(product(tmp_path / "b_i2d.fits", hdrtab=header_table([rows[0]] * 2),
                               cal_logs={}))
    assert agreeing.inputs_agree is True and agreeing.disagreements == {}


def test_products_of_releases_before_1_18_have_no_processing_log(tmp_path):
    p = pv.read(product(tmp_path / "old_cal.fits", release="1.12.5"))
    assert p.logs is None and p.parameters is None and p.pars_files is None
    assert p.log_note == ("no processing log: products of jwst < 1.18 do not record step "
                          "parameters")
    assert p.to_dict()["log_note"] == pv.NO_LOG_OLD
    none = pv.read(product(tmp_path / "bare_cal.fits", asdf=False))
    assert none.logs is None
    assert none.log_note == "no processing log: the product has no ASDF extension"


def test_releases_before_3_0_log_parameters_but_not_pars_files(tmp_path):
    """jwst 1.18-2.x (stpipe < 1.0): steps inside a pipeline have logs of their own (and no
    parameters), and the parameter reference files used are never named."""
    logs = {"calwebb_detector1": detector1_log(),
            "jump": [record(f"Step jump running with args (<RampModel(1, 5, 8, 8) from "
                            f"{UNCAL}>,)."), record("Step jump done")]}
    p = pv.read(product(tmp_path / "mid_rateints.fits", release="1.20.2", cal_logs=logs))
    assert p.parameters == {"calwebb_detector1": PARAMETERS, "jump": None}
    assert p.logs[1].input == UNCAL
    assert p.logs[1].note == ("a step run inside a pipeline: stpipe logs the parameters of "
                              "the outermost step only")
    assert p.pars_files is None
    assert p.log_note == ("logs of jwst < 3.0 (stpipe < 1.0) do not name the parameter "
                          "reference files (pars-*) used")


def test_a_blanked_parameter_record_is_explained(tmp_path):
    """jwst blanks every log line that holds the user's or the host's name (a host named
    `vm` blanks Image2's parameters: `weight_type: ivm`)."""
    log = [record("Image2Pipeline instance created."),
           record("Step Image2Pipeline running with args ('x_asn.json',)."), "",
           record("Step resample done")]
    p = pv.read(product(tmp_path / "x_cal.fits", cal_logs={"calwebb_image2": log}))
    assert p.parameters == {"calwebb_image2": None}
    assert p.logs[0].note == ("its log does not state the parameters (1 record(s) were "
                              "blanked: jwst drops every log line that contains the user's "
                              "or the host's name)")
    assert p.pars_files == {"calwebb_image2": {}}  # 3.0 records them: none was used


def test_disabled_parameter_references_are_reported(tmp_path):
    log = [record("PARS-DETECTOR1PIPELINE: CRDS parameter reference retrieval disabled."),
           *detector1_log()]
    p = pv.read(product(tmp_path / "d_rate.fits", release="1.19.0", cal_logs={
        "calwebb_detector1": log}))
    assert p.logs[0].pars_disabled is True
    assert p.pars_files == {"calwebb_detector1": {}} and p.log_note is None


def test_cal_logs_behind_an_alias_are_read_from_the_whole_tree(tmp_path):
    quoted = record("Step X running with args ('a',).").replace("'", "''")
    text = (ASDF_HEAD + f"shared: &logs ['{quoted}']\ncal_logs:\n  calwebb_image2: *logs\n"
            + ASDF_TAIL).encode()
    assert pv._cal_logs(text) == {"calwebb_image2": [record("Step X running with args "
                                                             "('a',).")]}
    assert pv._cal_logs((ASDF_HEAD + ASDF_TAIL).encode()) is None


def test_a_gzipped_product_reads_the_same(tmp_path):
    path = product(tmp_path / "z_cal.fits", cal_logs={"calwebb_detector1": detector1_log()})
    gz = tmp_path / "z_cal.fits.gz"
    gz.write_bytes(gzip.compress(path.read_bytes()))
    a, b = pv.read(path).to_dict(), pv.read(gz).to_dict()
    assert a.pop("path") != b.pop("path") and a == b


def test_a_raw_exposure_has_only_its_sdp_version(tmp_path):
    path = tmp_path / "r_uncal.fits"
    primary = fits.PrimaryHDU()
    primary.header.update({"TELESCOP": "JWST", "SDP_VER": "2024_3", "DATAMODL": "Level1bModel"})
    fits.HDUList([primary]).writeto(path)
    p = pv.read(path)
    assert (p.kind, p.release, p.sdp_version, p.logs, p.steps) == ("raw", None, "2024_3",
                                                                     None, {})
    assert p.log_note.startswith("raw (level-1b) product: made by the science data "
                                 "processing (SDP_VER 2024_3)")


@pytest.mark.parametrize(("make", "message"), [
    (lambda d: (d / "x.fits").write_text("SIMPLE? no") and d / "x.fits",
     "x.fits is not a FITS file"),
    (lambda d: (d / "c.ecsv").write_text("# %ECSV 1.0\n") and d / "c.ecsv",
     "c.ecsv is not a FITS file"),
    (lambda d: product(d / "h.fits", TELESCOP="HST"),
     "h.fits is not a JWST product (TELESCOP = 'HST')"),
    (lambda d: product(d / "t.fits", TELESCOP=None), "t.fits is not a JWST product (no "),
    (lambda d: product(d / "n.fits", CAL_VER=None, SDP_VER=None, DATAMODL=None),
     "n.fits is not a calibrated product: no CAL_VER (nor SDP_VER) in its primary header"),
    (lambda d: product(d / "f.fits", CAL_VER=None, REFTYPE="FLAT"),
     "f.fits is a CRDS reference file (REFTYPE FLAT), not a product"),
    (lambda d: d / "missing.fits", "missing.fits: no such file"),
    (lambda d: d, "is a directory, not a product"),
    (lambda d: (d / "cut.fits").write_bytes(product(d / "w.fits").read_bytes()[:2000])
     and d / "cut.fits", "cut.fits cannot be read: Empty or corrupt FITS file"),
])
def test_what_is_not_a_product_is_one_line(tmp_path, make, message):
    with pytest.raises(BadInput) as exc:
        pv.read(make(tmp_path))
    assert message in one_line(exc)


# -- grouping -------------------------------------------------------------------------------
def _pars(threshold: float, output_dir: str = "out") -> dict:
    pars = json.loads(json.dumps(PARAMETERS))
    pars["output_dir"] = output_dir
    pars["steps"]["jump"]["rejection_threshold"] = threshold
    pars["steps"]["jump"]["output_dir"] = output_dir
    return pars


def test_group_collapses_the_same_provenance_and_keeps_what_differs(tmp_path):
    f150 = product(tmp_path / "a_rate.fits", R_FLAT="crds://jwst_nircam_flat_0150.fits",
                   cal_logs={"calwebb_detector1": detector1_log(_pars(5.0, "run1"))})
    f200 = product(tmp_path / "b_rate.fits", R_FLAT="crds://jwst_nircam_flat_0200.fits",
                   SDP_VER="2025_2",
                   cal_logs={"calwebb_detector1": detector1_log(_pars(5.0, "run2"))})
    other = product(tmp_path / "c_rate.fits",
                    cal_logs={"calwebb_detector1": detector1_log(_pars(6.5))})
    old = product(tmp_path / "d_rate.fits", release="1.12.5")
    groups = pv.group([pv.read(p) for p in (f150, f200, other, old)])
    assert [[Path(f).name for f in g.files] for g in groups] == [
        ["a_rate.fits", "b_rate.fits"], ["c_rate.fits"], ["d_rate.fits"]]
    first = groups[0]
    assert first.references == {"dark": ["crds://jwst_nircam_dark_0342.fits"],
                                "flat": ["crds://jwst_nircam_flat_0150.fits",
                                         "crds://jwst_nircam_flat_0200.fits"]}
    assert first.sdp_versions == ["2025_1", "2025_2"]
    d = first.to_dict()
    assert d["count"] == 2 and d["reference_counts"] == {"dark": 1, "flat": 2}
    assert json.loads(json.dumps(d)) == d
    jump = d["parameters"]["calwebb_detector1"]["steps"]["jump"]
    assert "output_dir" not in jump and jump["rejection_threshold"] == 5.0
    assert (groups[2].release, groups[2].parameters, groups[2].log_note) == (
        "1.12.5", None, pv.NO_LOG_OLD)
    assert pv.parameter_differences(groups) == {
        "calwebb_detector1.steps.jump.rejection_threshold": [5.0, 6.5, None]}


def test_group_separates_step_statuses_and_names_disagreeing_level3(tmp_path):
    rows = [{"FILENAME": "a_crf.fits", "CAL_VER": "3.0.0"},
            {"FILENAME": "b_crf.fits", "CAL_VER": "1.20.2"}]
    done = product(tmp_path / "a_cal.fits", cal_logs={})
    skipped = product(tmp_path / "b_cal.fits", S_JUMP="SKIPPED", cal_logs={})
    mixed = product(tmp_path / "c_cal.fits", hdrtab=header_table(rows), cal_logs={})
    groups = pv.group([pv.read(p) for p in (done, skipped, mixed)])
    assert len(groups) == 2  # the inputs are each file's own identity
    assert [Path(f).name for f in groups[0].files] == ["a_cal.fits", "c_cal.fits"]
    assert groups[0].inputs_disagree == [str(mixed)]
    assert groups[1].steps["S_JUMP"] == "SKIPPED"


def test_raw_exposures_group_by_sdp_version(tmp_path):
    paths = []
    for name, sdp in (("a", "2024_3"), ("b", "2024_3"), ("c", "2025_1")):
        primary = fits.PrimaryHDU()
        primary.header.update({"TELESCOP": "JWST", "SDP_VER": sdp})
        fits.HDUList([primary]).writeto(tmp_path / f"{name}_uncal.fits")
        paths.append(tmp_path / f"{name}_uncal.fits")
    groups = pv.group([pv.read(p) for p in paths])
    assert [(g.kind, g.sdp_version, len(g.files)) for g in groups] == [
        ("raw", "2024_3", 2), ("raw", "2025_1", 1)]


# -- real products (integration) -------------------------------------------------------------
def _cli_env(real_home, program) -> dict[str, str]:
    return archive_env(real_home, program)


@pytest.fixture(scope="module")
def made(archive):
    """The offline program through stages 1-3 under 3.0.0, with a jump parameter set on
    the command line (the session's `archive`)."""
    return archive.program, archive.products


@pytest.mark.integration
def test_real_products_read_exactly_their_headers(made):
    program, out = made
    products = sorted(out.glob("*.fits"))
    assert len(products) >= 15
    for path in products:
        p = pv.read(path)
        with fits.open(path) as hdul:
            h = hdul[0].header
            assert (p.release, p.commit, p.crds_version, p.crds_context, p.sdp_version) == (
                h["CAL_VER"], h["CAL_VCS"], h["CRDS_VER"], h["CRDS_CTX"], h["SDP_VER"])
            assert {p.reference_keywords[t]: v for t, v in p.references.items()} == {
                k: h[k] for k in h if k.startswith("R_") and h[k] != "N/A"}
            assert p.steps == {k: h[k] for k in h if k.startswith("S_") and k != "S_REGION"}
            if "HDRTAB" in hdul:
                t = hdul["HDRTAB"].data
                assert [(i.filename, i.release, i.crds_context) for i in p.inputs] == list(
                    zip(t["FILENAME"], t["CAL_VER"], t["CRDS_CTX"], strict=True))
            else:
                assert p.inputs is None
        assert p.release == "3.0.0" and p.crds_context == program.context
        assert p.logs and p.logs[0].name == "calwebb_detector1"


@pytest.mark.integration
def test_real_products_state_the_parameter_set_on_the_command_line(made):
    program, out = made
    for suffix in ("rate", "cal"):
        path = out / UNCAL.replace("uncal", suffix)
        p = pv.read(path)
        log = p.logs[0]
        assert (log.step, log.input, log.crds_context) == ("Detector1Pipeline", UNCAL,
                                                           program.context)
        assert log.parameters["steps"]["jump"]["rejection_threshold"] == 5.0
        assert p.pars_files["calwebb_detector1"] == {}  # the local context maps none
    (level3,) = [pv.read(p) for p in out.glob("jw01234-o001_*_i2d.fits")]
    assert [log.name for log in level3.logs] == ["calwebb_detector1", "calwebb_image2",
                                                 "calwebb_image3"]
    assert level3.inputs_agree is True and len(level3.inputs) == 2
    assert {i.release for i in level3.inputs} == {"3.0.0"}


@pytest.mark.integration
def test_a_real_parameter_reference_file_is_named_and_grouped_apart(made, real_home,
                                                                      tmp_path):
    """A local CRDS context that maps pars-jumpstep: 3.0.0 names the file in its log."""
    program, out = made
    cache = tmp_path / "crds"
    shutil.copytree(program.crds_path, cache)
    mappings = cache / "mappings" / "jwst"
    imap = mappings / "jwst_nircam_9000.imap"  # the context the archive was made with
    text = imap.read_text()
    assert "'pars-jumpstep' : 'N/A'" in text
    rmap = imap.name.replace(".imap", ".rmap").replace("nircam_", "nircam_pars-jumpstep_")
    imap.write_text(text.replace("'pars-jumpstep' : 'N/A'", f"'pars-jumpstep' : '{rmap}'"))
    pars = rmap.replace(".rmap", ".asdf")
    (mappings / rmap).write_text(PARS_RMAP.format(name=rmap, file=pars))
    target = cache / "references" / "jwst" / "nircam" / pars
    env = dict(_cli_env(real_home, program), CRDS_PATH=str(cache))
    export = jwenv("run", "--offline", "3.0.0", "--", "python", "-c",
                   "from jwst.jump import JumpStep; s = JumpStep(); "
                   f"s.rejection_threshold = 6.5; s.export_config({str(target)!r})", env=env)
    assert export.returncode == 0, export.stderr[-2000:]
    proc = jwenv("reprocess", "3.0.0", *map(str, program.uncal), "-o", str(tmp_path / "runs"),
                 "--offline", "--crds-context", program.context, "--stages", "1", env=env)
    assert proc.returncode == 0, proc.stderr[-3000:]
    rate = pv.read(tmp_path / "runs" / "3.0.0" / UNCAL.replace("uncal", "rate"))
    assert rate.pars_files == {"calwebb_detector1": {"pars-jumpstep": pars}}
    assert rate.parameters["calwebb_detector1"]["steps"]["jump"]["rejection_threshold"] == 6.5
    stage1 = [*sorted(out.glob("*_rate*.fits")),
              *sorted((tmp_path / "runs" / "3.0.0").glob("*_rate*.fits"))]
    groups = pv.group([pv.read(p) for p in stage1])
    assert [len(g.files) for g in groups] == [6, 6]  # rate + rateints of 3 exposures
    assert pv.parameter_differences(groups) == {
        "calwebb_detector1.steps.jump.rejection_threshold": [5.0, 6.5]}


PARS_RMAP = """header = {{
    'classes' : ('Match', 'UseAfter'),
    'derived_from' : 'jwenv tests',
    'file_ext' : '.asdf',
    'filekind' : 'PARS-JUMPSTEP',
    'filetype' : 'PARS-JUMPSTEP',
    'instrument' : 'NIRCAM',
    'mapping' : 'REFERENCE',
    'name' : '{name}',
    'observatory' : 'JWST',
    'parkey' : (('META.INSTRUMENT.DETECTOR',), ('META.OBSERVATION.DATE', 'META.OBSERVATION.TIME')),
    'sha1sum' : '0000000000000000000000000000000000000000',
    'suffix' : 'pars-jumpstep',
    'text_descr' : 'Jump step parameters',
}}

selector = Match({{
    ('NRCB1',) : UseAfter({{
        '1900-01-01 00:00:00' : '{file}',
    }}),
}})
"""


def test_the_module_reads_no_asdf_and_no_jwst():
    source = Path(pv.__file__).read_text()
    assert not re.search(r"^\s*(import|from)\s+(asdf|jwst|stdatamodels)\b", source, re.M)
