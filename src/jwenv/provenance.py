"""What made each product: the header's provenance keywords and the processing log.

Every JWST product records in its primary header the release that made it (CAL_VER,
CAL_VCS), the CRDS version and context (CRDS_VER, CRDS_CTX), one ``R_*`` keyword per
reference file and one ``S_*`` keyword per step status; raw (level-1b) files carry only
SDP_VER. Resampled and level-3 products add an HDRTAB table: one row of header values per
input exposure. From jwst 1.18 on, the ASDF extension's tree has ``cal_logs``: for each
pipeline (or standalone step) that ran, its log records, one string each
(``"<UTC time>.<ms> - <logger> - <LEVEL> - <message>"``). The top-level step logs its
merged parameters as YAML (``Step Detector1Pipeline parameters are:``); from stpipe 1.0
(jwst 3.0) the log also names the parameter reference files it used
(``PARS-JUMPSTEP parameters found: jwst_nircam_pars-jumpstep_0001.asdf``).

`read` takes a path and returns a `Provenance`; `group` collapses many into a few
`Group`s. Data only: nothing here prints. Speed: astropy reads the headers lazily and no
data array is built; HDRTAB's rows are viewed through the table's own column layout; of
the ASDF extension only the YAML document is read, and of that only the top-level
``cal_logs`` entry is parsed (libyaml, custom tags ignored).
"""

from __future__ import annotations

import ast
import json
import re
import textwrap
import warnings
from dataclasses import asdict, dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any

import yaml
from packaging.version import InvalidVersion, Version

from jwenv.errors import BadInput

__all__ = ["Group", "Input", "PipelineLog", "Provenance", "group", "parameter_differences",
           "read"]

NOT_APPLICABLE = "N/A"
NOT_STEPS = frozenset({"S_REGION"})  # S_* keywords that are not step statuses
FIRST_LOG_RELEASE = Version("1.18")  # cal_logs in the ASDF extension
FIRST_PARS_RELEASE = Version("3.0")  # stpipe >= 1.0 records the PARS-* lines
NO_LOG_OLD = "no processing log: products of jwst < 1.18 do not record step parameters"
NO_PARS_OLD = ("logs of jwst < 3.0 (stpipe < 1.0) do not name the parameter reference "
               "files (pars-*) used")
#: HDRTAB columns compared across a product's inputs
AGREE = ("CAL_VER", "CAL_VCS", "CRDS_VER", "CRDS_CTX")
#: Parameters that say where things are written or read, not how data are calibrated;
#: left out when products are grouped (keys starting with ``save_`` too).
IO_PARAMETERS = frozenset({
    "pre_hooks", "post_hooks", "output_file", "output_dir", "output_ext",
    "output_use_model", "output_use_index", "save_results", "suffix",
    "search_output_file", "input_dir",
})
#: R_* keyword -> CRDS reference type (stdatamodels' core schema, 1.12.5 and 3.0.0)
REFERENCE_TYPES = {
    "R_AREA": "area", "R_BARSHA": "barshadow", "R_BKG": "bkg", "R_CAMERA": "camera",
    "R_CHRCOR": "chromcorr", "R_COLLIM": "collimator", "R_CUBPAR": "cubepar",
    "R_DARK": "dark", "R_DFLAT": "dflat", "R_DISPER": "disperser", "R_DISTOR": "distortion",
    "R_DRZPAR": "drizpars", "R_EXTR1D": "extract1d", "R_FFLAT": "fflat",
    "R_FILOFF": "filteroffset", "R_FLAT": "flat", "R_FORE": "fore", "R_FPA": "fpa",
    "R_FRIFRQ": "fringefreq", "R_FRINGE": "fringe", "R_GAIN": "gain", "R_IFUFOR": "ifufore",
    "R_IFUPOS": "ifupost", "R_IFUSLI": "ifuslicer", "R_IPC": "ipc", "R_LASTFR": "lastframe",
    "R_LINEAR": "linearity", "R_MASK": "mask", "R_MIREMI": "emicorr", "R_MRSPT": "mrsptcorr",
    "R_MRSXAR": "mrsxartcorr", "R_MSA": "msa", "R_MSAOPE": "badshutter", "R_NRM": "nrm",
    "R_OTE": "ote", "R_PERSAT": "persat", "R_PHOTOM": "photom", "R_PSFMAS": "psfmask",
    "R_PSTSOS": "pastasoss", "R_PTHLOS": "pathloss", "R_READNO": "readnoise",
    "R_REFPIX": "refpix", "R_REGION": "regions", "R_RESAMP": "resample", "R_RESET": "reset",
    "R_RESOL": "resolution", "R_RSCD": "rscd", "R_SATURA": "saturation",
    "R_SFLAT": "sflat", "R_SIRSKL": "sirskernel", "R_SPCWCS": "specwcs",
    "R_SPKERN": "speckernel", "R_SPPROF": "specprofile", "R_SPTRAC": "spectrace",
    "R_STRAY": "straylight", "R_SUPERB": "superbias", "R_THRPUT": "throughput",
    "R_TRPDEN": "trapdensity", "R_TRPPAR": "trappars", "R_TSPHOT": "tso_photometry",
    "R_V2V3": "v2v3", "R_WAVCOR": "wavecorr", "R_WAVMAP": "wavemap",
    "R_WAVRAN": "wavelengthrange",
}
_REF_NAME = re.compile(r"jwst_(?:nircam|niriss|nirspec|miri|fgs|system)_([a-z0-9-]+?)_\d+\.\w+$")
_RECORD = re.compile(r"(\S+) - (\S+) - ([A-Z]+) - (.*)\Z", re.S)
_RUNNING = re.compile(r"Step (\S+) running with args (.*)\Z", re.S)
_PARAMETERS = re.compile(r"Step (\S+) parameters are:(.*)\Z", re.S)
_PARS_FOUND = re.compile(r"(PARS-[A-Z0-9_-]+) parameters found: (.+)\Z", re.S)
_PARS_OFF = re.compile(r"(PARS-[A-Z0-9_-]+): CRDS parameter reference retrieval disabled")
_CONTEXT = re.compile(r"Results used CRDS context: (\S+)")
_ARG_NAME = re.compile(r"\('([^']*)'|from ([^\s>]+)>")
_CAL_LOGS = re.compile(rb"^cal_logs:", re.M)
_TOP_KEY = re.compile(rb"^[^\s#]", re.M)


# -- the result ----------------------------------------------------------------------------
@dataclass
class PipelineLog:
    """One entry of ``cal_logs``: a pipeline (or a standalone step) that ran."""

    name: str  # its key in cal_logs, e.g. "calwebb_detector1"
    step: str | None = None  # the class that ran, e.g. "Detector1Pipeline"
    input: str | None = None  # the file it was given (first argument)
    parameters: dict[str, Any] | None = None  # merged parameters, as the log states them
    pars_files: dict[str, str] = field(default_factory=dict)  # "pars-jumpstep" -> file
    pars_disabled: bool = False  # --disable-crds-steppars (or the variable) was in effect
    crds_context: str | None = None  # "Results used CRDS context: ..."
    records: int = 0
    note: str | None = None  # why parameters is None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class Input:
    """One row of a product's HDRTAB: an input exposure and what made it."""

    filename: str
    release: str | None = None
    commit: str | None = None
    crds_version: str | None = None
    crds_context: str | None = None
    sdp_version: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class Provenance:
    """What made one product (see the module's docstring for where each value is from)."""

    path: str
    kind: str  # "calibrated", or "raw" for level-1b files (SDP_VER, no CAL_VER)
    release: str | None = None  # CAL_VER
    commit: str | None = None  # CAL_VCS ("RELEASE" for a release)
    crds_version: str | None = None  # CRDS_VER
    crds_context: str | None = None  # CRDS_CTX
    sdp_version: str | None = None  # SDP_VER
    datamodel: str | None = None  # DATAMODL
    references: dict[str, str] = field(default_factory=dict)  # reference type -> R_* value
    reference_keywords: dict[str, str] = field(default_factory=dict)  # type -> R_* keyword
    not_applicable: list[str] = field(default_factory=list)  # R_* keywords that are 'N/A'
    steps: dict[str, str] = field(default_factory=dict)  # S_* keyword -> status
    logs: list[PipelineLog] | None = None  # None: the product has no processing log
    log_note: str | None = None  # why logs is None, or what the logs lack
    inputs: list[Input] | None = None  # from HDRTAB, when the product has one
    disagreements: dict[str, dict[str, list[str]]] = field(default_factory=dict)

    @property
    def name(self) -> str:
        return Path(self.path).name

    def _status(self, status: str) -> list[str]:
        return [k for k, v in self.steps.items() if v == status]

    @property
    def completed(self) -> list[str]:
        return self._status("COMPLETE")

    @property
    def skipped(self) -> list[str]:
        return self._status("SKIPPED")

    @property
    def failed(self) -> list[str]:
        return self._status("FAILED")

    @property
    def parameters(self) -> dict[str, dict[str, Any] | None] | None:
        """Each logged pipeline's parameters (None where its log does not state them)."""
        if self.logs is None:
            return None
        return {log.name: log.parameters for log in self.logs}

    @property
    def pars_files(self) -> dict[str, dict[str, str]] | None:
        """Parameter reference files per pipeline, where the release records them."""
        if self.logs is None or not _records_pars(self.release, self.logs):
            return None
        return {log.name: dict(log.pars_files) for log in self.logs}

    @property
    def inputs_agree(self) -> bool | None:
        return None if self.inputs is None else not self.disagreements

    def to_dict(self) -> dict[str, Any]:
        other = {k: v for k, v in self.steps.items()
                 if v not in ("COMPLETE", "SKIPPED", "FAILED")}
        return {
            "path": self.path, "kind": self.kind, "release": self.release,
            "commit": self.commit, "crds_version": self.crds_version,
            "crds_context": self.crds_context, "sdp_version": self.sdp_version,
            "datamodel": self.datamodel, "references": dict(self.references),
            "reference_keywords": dict(self.reference_keywords),
            "not_applicable": list(self.not_applicable), "steps": dict(self.steps),
            "completed": self.completed, "skipped": self.skipped, "failed": self.failed,
            "other_status": other,
            "logs": None if self.logs is None else [log.to_dict() for log in self.logs],
            "log_note": self.log_note, "pars_files": self.pars_files,
            "inputs": None if self.inputs is None else [i.to_dict() for i in self.inputs],
            "inputs_agree": self.inputs_agree, "disagreements": self.disagreements,
        }


# -- reading -------------------------------------------------------------------------------
def read(path: str | Path) -> Provenance:
    """The provenance of one product; `BadInput` (one line) if it is not a JWST product."""
    from astropy.io import fits

    p = Path(path)
    if p.is_dir():
        raise BadInput(f"{p} is a directory, not a product")
    if not p.is_file():
        raise BadInput(f"{p}: no such file")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # non-standard cards are read as they are
            # lazy: a header is parsed when its HDU is reached; no data array is read
            with fits.open(p, lazy_load_hdus=True, memmap=False) as hdul:
                return _read(p, hdul)
    except BadInput:
        raise
    except (OSError, ValueError, EOFError, IndexError, KeyError) as exc:
        if not _looks_like_fits(p):
            raise BadInput(f"{p} is not a FITS file") from None
        raise BadInput(f"{p} cannot be read: {exc}") from None


def _looks_like_fits(p: Path) -> bool:
    try:
        with p.open("rb") as fh:
            start = fh.read(30)
    except OSError:
        return False
    return start.startswith((b"SIMPLE  =", b"\x1f\x8b"))


def _read(p: Path, hdul: Any) -> Provenance:
    header = hdul[0].header
    telescope = header.get("TELESCOP")
    if str(telescope).strip().upper() != "JWST":
        said = "no TELESCOP" if telescope is None else f"TELESCOP = {telescope!r}"
        raise BadInput(f"{p} is not a JWST product ({said})")
    prov = Provenance(path=str(p), kind="calibrated",
                      release=_text(header.get("CAL_VER")),
                      commit=_text(header.get("CAL_VCS")),
                      crds_version=_text(header.get("CRDS_VER")),
                      crds_context=_text(header.get("CRDS_CTX")),
                      sdp_version=_text(header.get("SDP_VER")),
                      datamodel=_text(header.get("DATAMODL")))
    if prov.release is None:
        if header.get("REFTYPE"):
            raise BadInput(f"{p} is a CRDS reference file (REFTYPE {header['REFTYPE']}), "
                           "not a product")
        if prov.sdp_version is None and prov.datamodel != "Level1bModel":
            raise BadInput(f"{p} is not a calibrated product: no CAL_VER (nor SDP_VER) "
                           "in its primary header")
        prov.kind = "raw"
        prov.log_note = ("raw (level-1b) product: made by the science data processing "
                         f"(SDP_VER {prov.sdp_version}), not yet by the jwst pipeline")
    # values are parsed only for these keywords: a card's value costs ~20 µs to parse and
    # a primary header has hundreds
    for key in [k for k in header if k.startswith(("R_", "S_"))]:
        if key.startswith("R_"):
            _add_reference(prov, key, _text(header[key]))
        elif key not in NOT_STEPS:
            prov.steps[key] = str(header[key]).strip()
    if prov.kind == "raw":
        return prov
    where = {hdu.name.upper(): i for i, hdu in enumerate(hdul)}  # headers only
    if "HDRTAB" in where:
        _read_inputs(prov, hdul, where["HDRTAB"])
    _read_logs(prov, hdul, where.get("ASDF"))
    return prov


def _add_reference(prov: Provenance, key: str, value: str | None) -> None:
    if value is None or value.upper() == NOT_APPLICABLE:
        prov.not_applicable.append(key)
        return
    kind = REFERENCE_TYPES.get(key)
    if kind is None:
        m = _REF_NAME.search(value.lower())
        kind = m.group(1) if m else key[2:].lower()
    if kind in prov.references:  # two keywords of one type: keep both, by keyword
        kind = key[2:].lower()
    prov.references[kind] = value
    prov.reference_keywords[kind] = key


def _text(value: Any) -> str | None:
    if value is None or type(value).__name__ == "Undefined":
        return None
    text = str(value).strip()
    return text or None


def _data_bytes(hdul: Any, index: int, size: int) -> bytes:
    """The first `size` bytes of an HDU's data, read raw (no array is built)."""
    info = hdul[index].fileinfo()  # (HDUList.fileinfo re-serialises every header)
    info["file"].seek(info["datLoc"])
    return info["file"].read(min(size, info["datSpan"]))


# -- HDRTAB --------------------------------------------------------------------------------
def _read_inputs(prov: Provenance, hdul: Any, index: int) -> None:
    """HDRTAB's provenance columns: the rows' bytes viewed through the table's own column
    layout (astropy's table of 165 columns costs ~0.1 s a file)."""
    import numpy as np

    hdu = hdul[index]
    keys = ("FILENAME", *AGREE, "SDP_VER")
    try:
        dtype = hdu.columns.dtype
        rows = int(hdu.header["NAXIS2"])
        if dtype.itemsize != int(hdu.header["NAXIS1"]):
            raise ValueError("the columns' widths do not add up to NAXIS1")
        table = np.frombuffer(_data_bytes(hdul, index, rows * dtype.itemsize), dtype=dtype,
                              count=rows)
    except (ValueError, KeyError, TypeError) as exc:
        prov.log_note = f"HDRTAB cannot be read ({exc}): its inputs are not listed"
        return
    names = {n.upper(): n for n in (dtype.names or ())}
    cols: dict[str, list[str | None]] = {}
    for key in keys:
        name = names.get(key)
        if name is None or dtype[name].kind != "S":
            cols[key] = [None] * rows
            continue
        cols[key] = [_text(v.rstrip(b"\0 ").decode("ascii", "replace")) for v in table[name]]
    prov.inputs = [
        Input(filename=cols["FILENAME"][i] or f"row {i + 1}", release=cols["CAL_VER"][i],
              commit=cols["CAL_VCS"][i], crds_version=cols["CRDS_VER"][i],
              crds_context=cols["CRDS_CTX"][i], sdp_version=cols["SDP_VER"][i])
        for i in range(rows)]
    for key in AGREE:
        if key not in names:
            continue
        values: dict[str, list[str]] = {}
        for inp, value in zip(prov.inputs, cols[key], strict=True):
            values.setdefault(str(value), []).append(inp.filename)
        if len(values) > 1:
            prov.disagreements[key] = values


# -- the processing log (ASDF extension) ---------------------------------------------------
def _loader() -> type:
    base = getattr(yaml, "CSafeLoader", yaml.SafeLoader)

    class Loader(base):  # type: ignore[misc, valid-type]
        """Safe YAML that reads any custom (ASDF) tag as the plain node beneath it."""

    def untagged(loader, _suffix, node):
        if isinstance(node, yaml.MappingNode):
            return loader.construct_mapping(node, deep=True)
        if isinstance(node, yaml.SequenceNode):
            return loader.construct_sequence(node, deep=True)
        return loader.construct_scalar(node)

    Loader.add_multi_constructor("", untagged)
    return Loader


_Loader = _loader()


def _yaml_document(hdul: Any, index: int) -> bytes:
    """The ASDF file's YAML document (up to its end marker); binary blocks are not read."""
    info = hdul[index].fileinfo()  # (HDUList.fileinfo re-serialises every header)
    fh, left = info["file"], info["datSpan"]
    fh.seek(info["datLoc"])
    buf = bytearray()
    while left > 0:
        chunk = fh.read(min(left, 1 << 16))
        if not chunk:
            break
        left -= len(chunk)
        start = max(0, len(buf) - 4)
        buf += chunk
        at = buf.find(b"\n...", start)
        if at != -1:
            return bytes(buf[:at + 1])
    return bytes(buf)


def _cal_logs(document: bytes) -> Any:
    """The tree's ``cal_logs``: the top-level entry alone is parsed, else the whole tree."""
    m = _CAL_LOGS.search(document)
    if m is not None:
        end = _TOP_KEY.search(document, m.end())
        block = document[m.start():end.start() if end else len(document)]
        try:
            return (yaml.load(block, Loader=_Loader) or {}).get("cal_logs")
        except yaml.YAMLError:
            pass  # e.g. an alias to an anchor elsewhere: read the whole tree
    elif b"cal_logs:" not in document:
        return None
    try:
        tree = yaml.load(document, Loader=_Loader)
    except yaml.YAMLError:
        return None
    if not isinstance(tree, dict):
        return None
    meta = tree.get("meta") if isinstance(tree.get("meta"), dict) else {}
    return tree.get("cal_logs", meta.get("cal_logs"))


def _version(release: str | None) -> Version | None:
    try:
        return Version(release) if release else None
    except InvalidVersion:
        return None


def _records_pars(release: str | None, logs: list[PipelineLog]) -> bool:
    if any(log.pars_files or log.pars_disabled for log in logs):
        return True
    v = _version(release)
    return v is None or v.release >= FIRST_PARS_RELEASE.release


def _read_logs(prov: Provenance, hdul: Any, index: int | None) -> None:
    v = _version(prov.release)
    old = v is not None and v.release < FIRST_LOG_RELEASE.release
    cal_logs = None if index is None else _cal_logs(_yaml_document(hdul, index))
    if not isinstance(cal_logs, dict) or not cal_logs:
        if old:
            prov.log_note = NO_LOG_OLD
        elif index is None:
            prov.log_note = "no processing log: the product has no ASDF extension"
        else:
            prov.log_note = "no processing log: its ASDF extension has no cal_logs"
        return
    prov.logs = [_parse_log(str(name), records) for name, records in cal_logs.items()]
    if not _records_pars(prov.release, prov.logs):
        prov.log_note = NO_PARS_OLD


def _parse_log(name: str, records: Any) -> PipelineLog:
    log = PipelineLog(name=name)
    if not isinstance(records, list):
        log.note = "its log is not a list of records"
        return log
    scrubbed = 0
    inner = False
    for record in records:
        if not isinstance(record, str):
            continue
        log.records += 1
        if not record:
            scrubbed += 1
            continue
        m = _RECORD.match(record)
        message = m.group(4) if m else record
        if message.startswith("Step "):
            if (run := _RUNNING.match(message)) and log.step is None:
                log.step = run.group(1)
                inner = run.group(2).startswith("(<")  # given a model, not a file
                arg = _ARG_NAME.search(run.group(2))
                if arg:
                    log.input = arg.group(1) or arg.group(2)
            elif (pars := _PARAMETERS.match(message)) and log.parameters is None and (
                    log.step is None or pars.group(1) == log.step):
                log.parameters = _parse_parameters(pars.group(2))
                if log.parameters is None:
                    log.note = "its parameter record could not be read"
        elif message.startswith("PARS-"):
            if found := _PARS_FOUND.match(message):
                log.pars_files[found.group(1).lower()] = found.group(2).strip()
            elif _PARS_OFF.match(message):
                log.pars_disabled = True
        elif message.startswith("Results used CRDS context: "):
            log.crds_context = _CONTEXT.match(message).group(1)  # type: ignore[union-attr]
    if log.parameters is None and log.note is None:
        log.note = "its log does not state the parameters"
        if inner:
            log.note = ("a step run inside a pipeline: stpipe logs the parameters of the "
                        "outermost step only")
        elif scrubbed:
            log.note += (f" ({scrubbed} record(s) were blanked: jwst drops every log line "
                         "that contains the user's or the host's name)")
    return log


def _parse_parameters(text: str) -> dict[str, Any] | None:
    found = _parameters_json(text)
    return None if found is None else json.loads(found)


@lru_cache(maxsize=256)
def _parameters_json(text: str) -> str | None:
    """The parameters of one log record, as JSON (the products of one run share their
    records' text: each is parsed once)."""
    body = text.strip("\n")
    if body.lstrip().startswith("{"):  # a dict's repr, as very old stpipe logged it
        try:
            value = ast.literal_eval(body.strip())
        except (ValueError, SyntaxError):
            return None
    else:
        try:
            value = yaml.load(textwrap.dedent(body), Loader=_Loader)
        except yaml.YAMLError:
            return None
    if not isinstance(value, dict):
        return None
    return json.dumps(_nones(value), default=str)


def _nones(value: Any) -> Any:
    """stpipe writes YAML's null as Python's None: read it back as None."""
    if isinstance(value, dict):
        return {k: _nones(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_nones(v) for v in value]
    return None if value == "None" else value


# -- grouping ------------------------------------------------------------------------------
def science_parameters(parameters: dict[str, Any]) -> dict[str, Any]:
    """A step's parameters without those that only say where files go (IO_PARAMETERS)."""
    out: dict[str, Any] = {}
    for key, value in parameters.items():
        if key in IO_PARAMETERS or key.startswith("save_"):
            continue
        if key == "steps" and isinstance(value, dict):
            value = {step: science_parameters(pars) if isinstance(pars, dict) else pars
                     for step, pars in value.items()}
        out[key] = value
    return out


@dataclass
class Group:
    """Products with the same provenance: release, commit, CRDS version and context, step
    statuses, parameters and parameter reference files (their own identity aside:
    references, which differ by detector and filter, are listed by type)."""

    kind: str
    release: str | None
    commit: str | None
    crds_version: str | None
    crds_context: str | None
    steps: dict[str, str]
    parameters: dict[str, dict[str, Any] | None] | None  # per pipeline, I/O ones left out
    pars_files: dict[str, dict[str, str]] | None
    sdp_version: str | None = None  # raw products only (calibrated: see sdp_versions)
    log_note: str | None = None
    files: list[str] = field(default_factory=list)
    references: dict[str, list[str]] = field(default_factory=dict)  # type -> distinct
    sdp_versions: list[str] = field(default_factory=list)
    inputs_disagree: list[str] = field(default_factory=list)  # files whose inputs disagree

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["count"] = len(self.files)
        out["reference_counts"] = {k: len(v) for k, v in self.references.items()}
        return out


def _key(p: Provenance) -> tuple[str, dict[str, Any]]:
    parameters = p.parameters
    if parameters is not None:
        parameters = {name: None if pars is None else science_parameters(pars)
                      for name, pars in parameters.items()}
    fields = {
        "kind": p.kind, "release": p.release, "commit": p.commit,
        "crds_version": p.crds_version, "crds_context": p.crds_context,
        "steps": dict(p.steps), "parameters": parameters, "pars_files": p.pars_files,
        "sdp_version": p.sdp_version if p.kind == "raw" else None,
        "log_note": p.log_note,
    }
    return json.dumps(fields, sort_keys=True, default=str), fields


def group(provenances) -> list[Group]:
    """Products with the same provenance, in the order their first file came."""
    groups: dict[str, Group] = {}
    for p in provenances:
        key, fields = _key(p)
        g = groups.get(key)
        if g is None:
            g = groups[key] = Group(**fields)
        g.files.append(p.path)
        for kind, value in p.references.items():
            values = g.references.setdefault(kind, [])
            if value not in values:
                values.append(value)
        if p.sdp_version is not None and p.sdp_version not in g.sdp_versions:
            g.sdp_versions.append(p.sdp_version)
        if p.disagreements:
            g.inputs_disagree.append(p.path)
    for g in groups.values():
        g.references = {k: sorted(v) for k, v in sorted(g.references.items())}
    return list(groups.values())


def _flatten(value: Any, prefix: str, out: dict[str, Any]) -> dict[str, Any]:
    if isinstance(value, dict) and value:
        for k, v in value.items():
            _flatten(v, f"{prefix}.{k}" if prefix else str(k), out)
    else:
        out[prefix] = value
    return out


_ABSENT = "<absent>"


def parameter_differences(groups: list[Group]) -> dict[str, list[Any]]:
    """Parameters whose values differ between groups, as dotted names (e.g.
    ``calwebb_detector1.steps.jump.rejection_threshold``): one value per group, in order.

    A parameter is compared among the groups whose log states its pipeline's parameters;
    the others get None, and a group that has the pipeline but not the parameter
    ``"<absent>"``.
    """
    flats: list[dict[str, Any]] = []
    for g in groups:
        flat: dict[str, Any] = {}
        for pipeline, pars in (g.parameters or {}).items():
            if isinstance(pars, dict):
                _flatten(pars, pipeline, flat)
        flats.append(flat)
    stated = [{k.split(".", 1)[0] for k in flat} for flat in flats]
    out: dict[str, list[Any]] = {}
    for key in sorted({k for flat in flats for k in flat}):
        pipeline = key.split(".", 1)[0]
        values = [flat.get(key, _ABSENT) if pipeline in have else None
                  for flat, have in zip(flats, stated, strict=True)]
        compared = [v for v, have in zip(values, stated, strict=True) if pipeline in have]
        if len(compared) > 1 and any(v != compared[0] for v in compared[1:]):
            out[key] = values
    return out
