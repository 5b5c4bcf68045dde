#!/usr/bin/env python
"""Make a synthetic NIRCam program and a local CRDS cache that serves it offline.

Standalone on purpose: it runs under a *managed* environment's own interpreter, so
the reference files and the exposure are written by the release's own datamodels
(files written by a newer stdatamodels may not load in an older release). It imports
only what every jwst environment has: jwst, stdatamodels (or jwst.datamodels), crds,
numpy, astropy.

    <env>/bin/python make_program.py --out DIR [--size 64] [--seed 0] [--program]
        [--observations 2] [--filters F150W,F200W] [--dithers 2] [--second-context [F]]

writes ``DIR/crds`` (server_config, a hand-made ``jwst_9000.pmap`` → NIRCam ``.imap`` →
``.rmap`` chain, synthetic ``references/jwst/nircam/*.fits``) and ``DIR/data/*_uncal.fits``,
then prints one JSON object as the last line of stdout. Runs use the cache the way
jwenv.crds sets it for a hand-made local cache (``crds.LocalCache``): CRDS_PATH=DIR/crds,
CRDS_CONTEXT=jwst_9000.pmap, serverless, mapping checksums ignored; jwenv runs this script
offline too (``Env.run_script``), so CRDS never looks for a server.

With ``--program`` it writes instead a full NIRCam imaging program for Detector1 → Image2 →
Image3: two dithered 400×400 star-field exposures (the second with a pointing error in its
header), one star-free background exposure in its own observation, ``truth.ecsv`` (RA/Dec
of every injected star) and the stage-2/3 references this release's Image2/Image3 steps
declare and its crds knows (of distortion, filteroffset, flat, photom, area, drizpars,
apcorr, abvegaoffset: ``chain_builders``). No association files: the release's own rules
group the exposures (``jwenv reprocess``).

With ``--observations N``, ``--filters F1,F2`` and/or ``--dithers N`` (each implies
``--program``) it writes a *whole program* instead: N observations of different targets,
each in every filter with N dithers (DMS file names and the header keywords association
rules read), one star-free background exposure per filter, ``truth_o<obs>.ecsv`` per
observation, and references whose rmaps select every filter (the flat is one file per
filter). No association files: the release's own rules make them from the headers. The
JSON lists ``observations`` (target, truth, exposures) and ``background``.

With ``--second-context [FILTER]`` (``--program`` or a whole program) the cache also holds
``jwst_9001.pmap``: the same as ``jwst_9000.pmap`` except that FILTER's flat (default
F150W) is a new file, 2% higher (``jwst_nircam_flat_9100.fits``). Every other type resolves
to the same file under both. The JSON's ``contexts`` lists both and ``second_context``
says what differs and for which exposures. ``--extend`` tops up every generated context:
N/A for types this release knows and the cache lacks, and the stage-2/3 references its
steps use that an older generating release did not write (``extend_references``).

Step-parameter references (``pars-*``) are mapped to ``'N/A'`` in the imap, so runs work
with or without ``--disable-crds-steppars``; the code defaults of the release apply.
Mapping checksums are written correctly, so CRDS_IGNORE_MAPPING_CHECKSUM is belt and braces.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as _dt
import hashlib
import json
import pprint
import sys
import warnings
from pathlib import Path
from typing import Any, Callable

import numpy as np

try:  # releases >= 1.9
    from stdatamodels.jwst import datamodels as dm
except ImportError:  # releases <= 1.8
    from jwst import datamodels as dm  # type: ignore[no-redef]

CONTEXT_SERIAL = "9000"  # far above any real jwst_NNNN.pmap, still matches CRDS's name regex
CONTEXT = f"jwst_{CONTEXT_SERIAL}.pmap"
# --second-context: jwst_9001.pmap, the same as 9000 but for one filter's flat (a new file,
# 2% different); its other rmaps are 9000's own files.
SECOND_SERIAL = "9001"
SECOND_CONTEXT = f"jwst_{SECOND_SERIAL}.pmap"
CHANGED_KIND = "flat"
CHANGED_FACTOR = 1.02
USEAFTER = "2022-01-01T00:00:00"
DATE_PARKEYS = ("META.OBSERVATION.DATE", "META.OBSERVATION.TIME")
# Tree-only models are ASDF files whatever the crds spec's default extension says.
ASDF_TYPES = {"distortion": ".asdf", "filteroffset": ".asdf", "abvegaoffset": ".asdf"}

# NIRCam short-wave detector B1 imaging in F200W; real subarray names for each size.
INSTRUMENT = {"name": "NIRCAM", "detector": "NRCB1", "channel": "SHORT", "module": "B",
              "filter": "F200W", "pupil": "CLEAR"}
SUBARRAYS = {64: "SUB64P", 160: "SUB160P", 400: "SUB400P", 2048: "FULL"}
NGROUPS = 5
BIAS = 12000.0        # DN
GAIN = 2.05           # e-/DN
READNOISE = 6.0       # DN per read
NONLIN = 2.0e-6       # measured = true - NONLIN * true**2 (DN)
SATURATION = 60000.0  # DN, raw
IPC_NEIGHBOUR = 0.006
PSF_SIGMA = 0.9       # pixels; NIRCam SW F200W FWHM ~2.1 px


# ----------------------------------------------------------------------------- helpers

def _dq(name: str) -> int:
    """DQ bit values from the release itself (the names are stable)."""
    try:
        from stdatamodels.jwst.datamodels import dqflags
    except ImportError:
        from jwst.datamodels import dqflags  # type: ignore[no-redef]
    return int(dqflags.pixel[name])


def frame_time(size: int) -> float:
    """NIRCam frame time for a one-output subarray (10 µs per pixel, 12 extra columns)."""
    if size >= 2048:
        return 10.73677
    return (size + 12) * (size + 1) * 10e-6


def _quiet_save(model: Any, path: Path) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model.save(str(path))
    model.close()


def _set(node: Any, **values: Any) -> None:
    for key, value in values.items():
        setattr(node, key, value)


def crds_filekinds(instrument: str = "nircam") -> dict[str, dict[str, Any]]:
    """The instrument's type specs (parkeys, suffix, extension) shipped with the installed
    crds."""
    try:
        from crds.core import reftypes

        defs = reftypes.get_types_object("jwst").unified_defs[instrument]
        return {kind.lower(): dict(spec) for kind, spec in defs.items()}
    except Exception:  # older crds layouts: read the combined specs file directly
        import crds

        specs = Path(crds.__file__).parent / "jwst" / "specs" / "combined_specs.json"
        defs = json.loads(specs.read_text())[instrument]
        return {kind.lower(): spec for kind, spec in defs.items()}


def pipeline_reftypes(names: list[str]) -> tuple[dict[str, list[str]], set[str]]:
    """Reference types each step of the given pipelines declares in this release, and the
    ``pars-<class>`` types stpipe asks CRDS for (mapped to N/A so CRDS logs no errors)."""
    import importlib

    out: dict[str, list[str]] = {}
    pars: set[str] = set()
    for name in names:
        module, cls_name = name.rsplit(".", 1)
        try:
            cls = getattr(importlib.import_module(module), cls_name)
        except (ImportError, AttributeError):
            continue
        pars.add(f"pars-{cls.__name__.lower()}")
        for step_name, step_cls in getattr(cls, "step_defs", {}).items():
            pars.add(f"pars-{step_cls.__name__.lower()}")
            types = getattr(step_cls, "reference_file_types", [])
            if isinstance(types, property):  # computed per instance in newer releases
                try:
                    types = step_cls().reference_file_types
                except Exception:
                    types = []
            types = [str(t) for t in (types or [])]
            out.setdefault(step_name, [])
            out[step_name] += [t for t in types if t not in out[step_name]]
    return out, pars


# ----------------------------------------------------------------------------- exposure

def random_generator(seed: int) -> Any:
    """numpy's Generator; before numpy 1.17 (releases <= 0.12 run 1.13-1.16) the legacy
    RandomState with Generator's `integers` name, so the same code runs in every era."""
    if hasattr(np.random, "default_rng"):
        return np.random.default_rng(seed)
    return _LegacyRandom(seed)


class _LegacyRandom:
    def __init__(self, seed: int) -> None:
        self._state = np.random.RandomState(seed)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._state, name)

    def integers(self, low: int, high: int | None = None, size: Any = None) -> Any:
        return self._state.randint(low, high, size)


class Scene:
    """What the sky and the detector do; one object so data and references agree."""

    def __init__(self, size: int, seed: int) -> None:
        self.size = size
        self.subarray = SUBARRAYS[size]
        self.rng = random_generator(seed)
        self.tframe = frame_time(size)
        self.tgroup = self.tframe  # RAPID: nframes=1, groupgap=0
        yy, xx = np.mgrid[0:size, 0:size]
        rng = self.rng
        self.superbias = (BIAS + rng.normal(0, 150, (size, size))).astype(np.float32)
        self.darkrate = np.abs(rng.normal(0.005, 0.002, (size, size))).astype(np.float32)
        n_hot = max(2, size * size // 1000)
        hot = (rng.integers(4, size, n_hot), rng.integers(4, size, n_hot))
        self.darkrate[hot] = rng.uniform(20.0, 80.0, n_hot)  # DN/s, removed by the dark step
        self.gain = np.full((size, size), GAIN, np.float32)
        self.readnoise = np.full((size, size), READNOISE, np.float32)
        self.mask = np.zeros((size, size), np.uint32)
        refpix = (xx < 4) | (yy < 4)  # subarray starts at (1, 1): 4 reference rows/columns
        if size >= 2048:
            refpix |= (xx >= 2044) | (yy >= 2044)
        self.refpix = refpix
        self.mask[refpix] = _dq("REFERENCE_PIXEL") | _dq("DO_NOT_USE")
        dead = (rng.integers(4, size, 2), rng.integers(4, size, 2))
        self.mask[dead] = _dq("DEAD") | _dq("DO_NOT_USE")
        self.dead = dead
        self.flat = np.ones((size, size), np.float32)  # pixel response; structured in --program
        self.refpix_flags = "REFERENCE_PIXEL|DO_NOT_USE"
        # Filters the references must serve (whole program: several), the current one, and
        # per-filter pixel response (when empty, `flat` serves every filter).
        self.filters = [INSTRUMENT["filter"]]
        self.filter = INSTRUMENT["filter"]
        self.flats: dict[str, np.ndarray] = {}

    def use_filter(self, name: str) -> None:
        """Make `name` the current filter: its flat goes into the data and the references."""
        self.filter = name
        if name in self.flats:
            self.flat = self.flats[name]

    def use_reference_pixels(self) -> None:
        """Flag the reference pixels REFERENCE_PIXEL only, so the refpix step uses them.

        By default they are also DO_NOT_USE: current releases then leave them out (refpix
        has nothing to do; the rate is NaN there). Older refpix steps (0.15-era) cannot
        handle a subarray whose reference pixels are all DO_NOT_USE (they subtract None)."""
        self.mask[self.refpix] = _dq("REFERENCE_PIXEL")
        self.refpix_flags = "REFERENCE_PIXEL"

    def rate(self, sky: float, sources: list[tuple[float, float, float]]) -> np.ndarray:
        """Sky + Gaussian point sources (total DN/s each), convolved with the IPC kernel."""
        size = self.size
        yy, xx = np.mgrid[0:size, 0:size].astype(float)
        img = np.full((size, size), sky, float)
        norm = 1.0 / (2 * np.pi * PSF_SIGMA**2)
        for x, y, flux in sources:
            r2 = (xx - x) ** 2 + (yy - y) ** 2
            img += flux * norm * np.exp(-0.5 * r2 / PSF_SIGMA**2)
        ipc = img * (1 - 4 * IPC_NEIGHBOUR)
        for axis in (0, 1):
            for shift in (-1, 1):
                ipc += IPC_NEIGHBOUR * np.roll(img, shift, axis=axis)
        ipc *= self.flat
        ipc[self.refpix] = 0.0
        return ipc

    def ramp(self, rate: np.ndarray) -> np.ndarray:
        """Raw uint16 ramp (1, NGROUPS, ny, nx): bias + non-linear signal + dark + noise."""
        rng = self.rng
        size = self.size
        electrons = rng.poisson(np.clip(rate, 0, None)[None] * self.tgroup * GAIN,
                                (NGROUPS, size, size))
        signal = np.cumsum(electrons, axis=0) / GAIN
        signal -= NONLIN * signal**2
        times = self.tgroup * np.arange(1, NGROUPS + 1)
        dark = self.darkrate[None] * times[:, None, None]
        dark[:, self.refpix] = 0.0
        raw = self.superbias[None] + signal + dark
        raw += rng.normal(0, READNOISE, raw.shape)
        raw[:, self.dead[0], self.dead[1]] = BIAS  # dead pixels do not integrate
        return np.clip(np.round(raw), 0, 65535).astype(np.uint16)[None]


def _exposure_meta(model: Any, scene: Scene, *, obs: dict[str, Any]) -> None:
    """Everything Detector1 (and, with wcsinfo, stages 2-3) reads from the header."""
    size = scene.size
    meta = model.meta
    start = obs["start"]
    duration = NGROUPS * scene.tgroup + scene.tframe
    mjd0 = (start - _dt.datetime(1858, 11, 17)).total_seconds() / 86400.0
    _set(meta, telescope="JWST", filename=obs["filename"], origin="STScI",
         data_processing_software_version="synthetic", model_type=type(model).__name__)
    _set(meta.instrument, **dict(INSTRUMENT, filter=obs.get("filter", INSTRUMENT["filter"])))
    _set(meta.observation, date=start.strftime("%Y-%m-%d"),
         time=start.strftime("%H:%M:%S.%f")[:12], program_number=obs["program"],
         observation_number=obs["observation"], visit_number=obs["visit"],
         visit_group="01", sequence_id="1", activity_id=obs["activity"],
         exposure_number=obs["exposure"], obs_id=obs["obs_id"],
         visit_id=obs["visit_id"])
    with contextlib.suppress(Exception):
        meta.observation.date_beg = start.strftime("%Y-%m-%dT%H:%M:%S.%f")[:23]
    _set(meta.exposure, type="NRC_IMAGE", readpatt="RAPID", nints=1, ngroups=NGROUPS,
         nframes=1, groupgap=0, nresets_at_start=1, nresets_between_ints=1,
         frame_time=scene.tframe, group_time=scene.tgroup, sample_time=10,
         integration_time=NGROUPS * scene.tgroup, exposure_time=NGROUPS * scene.tgroup,
         effective_exposure_time=(NGROUPS - 1) * scene.tgroup, duration=duration,
         elapsed_exposure_time=duration, measurement_time=(NGROUPS - 1) * scene.tgroup,
         start_time=mjd0, mid_time=mjd0 + duration / 2 / 86400, end_time=mjd0 + duration / 86400,
         drop_frames1=0, drop_frames3=0, integration_start=1, integration_end=1,
         zero_frame=False, data_problem=False, noutputs=1, primary_type="NONE",
         nexposures=1, frame_divisor=1)
    _set(meta.subarray, name=scene.subarray, xstart=1, ystart=1, xsize=size, ysize=size,
         fastaxis=-1, slowaxis=2)
    _set(meta.visit, tsovisit=False, type="PRIME_TARGETED_FIXED", engineering_quality="OK")
    _set(meta.target, catalog_name=obs.get("targname", "SYNTHETIC-FIELD"),
         proposer_name=obs.get("targprop", "synthetic field"), ra=obs["ra"], dec=obs["dec"],
         type="FIXED")
    _set(meta.dither, primary_type="NONE", position_number=obs["dither"], total_points=1)


def make_uncal(scene: Scene, path: Path, obs: dict[str, Any],
               sources: list[tuple[float, float, float]], sky: float) -> Path:
    """Write one synthetic uncal exposure with the release's Level1bModel."""
    model_cls = getattr(dm, "Level1bModel", None) or dm.RampModel
    raw = scene.ramp(scene.rate(sky, sources))
    model = model_cls(data=raw)
    _exposure_meta(model, scene, obs=obs)
    _quiet_save(model, path)
    return path


def refpix_accepts_unusable(scene: Scene, uncal: Path) -> bool:
    """Whether this release's refpix step runs on the exposure when every reference pixel
    is DO_NOT_USE (as the mask flags them). A behavioural probe, not a version check: the
    step is run in memory (no reference file for a NIRCam subarray) on the uncal data."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            from jwst.refpix import RefPixStep
        except ImportError:
            return True  # no refpix step to worry about
        import logging

        logging.disable(logging.CRITICAL)  # the probe's step logs would look like a run's
        try:
            with dm.RampModel(str(uncal)) as model:
                model.data = model.data.astype(np.float32)
                model.pixeldq = scene.mask.copy()
                model.groupdq = np.zeros(model.data.shape, np.uint8)
                result = RefPixStep().process(model)
                with contextlib.suppress(Exception):
                    result.close()
            return True
        except Exception:
            return False
        finally:
            logging.disable(logging.NOTSET)


# ----------------------------------------------------------------------------- references

def _ref_meta(model: Any, scene: Scene, reftype: str, description: str) -> None:
    meta = model.meta
    _set(meta, reftype=reftype.upper(), description=description, telescope="JWST",
         author="jwenv make_program.py (synthetic)", pedigree="DUMMY",
         useafter=USEAFTER)
    _set(meta.instrument, **dict(INSTRUMENT, filter=scene.filter))
    # Not every reference schema has every node: set what the model accepts.
    for node, values in (("exposure", {"type": "NRC_IMAGE", "readpatt": "ANY", "nframes": 1,
                                       "groupgap": 0}),
                         ("subarray", {"name": scene.subarray, "xstart": 1, "ystart": 1,
                                       "xsize": scene.size, "ysize": scene.size,
                                       "fastaxis": -1, "slowaxis": 2})):
        for key, value in values.items():
            with contextlib.suppress(Exception):
                setattr(getattr(meta, node), key, value)


def ref_mask(s: Scene) -> Any:
    return dm.MaskModel(dq=s.mask.copy())


def ref_saturation(s: Scene) -> Any:
    return dm.SaturationModel(data=np.full((s.size, s.size), SATURATION, np.float32),
                              dq=np.zeros((s.size, s.size), np.uint32))


def ref_superbias(s: Scene) -> Any:
    return dm.SuperBiasModel(data=s.superbias.copy(),
                             err=np.full((s.size, s.size), 1.0, np.float32),
                             dq=np.zeros((s.size, s.size), np.uint32))


def ref_linearity(s: Scene) -> Any:
    """Inverse of the injected quadratic to third order: true ~ m + a m^2 + 2 a^2 m^3."""
    coeffs = np.zeros((4, s.size, s.size), np.float32)
    coeffs[1] = 1.0
    coeffs[2] = NONLIN
    coeffs[3] = 2 * NONLIN**2
    return dm.LinearityModel(coeffs=coeffs, dq=np.zeros((s.size, s.size), np.uint32))


def ref_dark(s: Scene) -> Any:
    nframes = 2 * NGROUPS
    times = s.tframe * np.arange(1, nframes + 1)
    data = (s.darkrate[None] * times[:, None, None]).astype(np.float32)
    data[:, s.refpix] = 0.0
    model = dm.DarkModel(data=data, err=np.full(data.shape, 0.5, np.float32),
                         dq=np.zeros((s.size, s.size), np.uint32))
    model.meta.exposure.ngroups = nframes
    with contextlib.suppress(Exception):  # scalar e-/s: some releases reject the 2-D form
        model.meta.exposure.average_dark_current = float(np.median(s.darkrate) * GAIN)
    return model


def ref_readnoise(s: Scene) -> Any:
    return dm.ReadnoiseModel(data=s.readnoise.copy())


def ref_gain(s: Scene) -> Any:
    return dm.GainModel(data=s.gain.copy())


def ref_ipc(s: Scene) -> Any:
    kernel = np.zeros((3, 3), np.float32)
    kernel[1, 1] = 1 - 4 * IPC_NEIGHBOUR
    kernel[0, 1] = kernel[2, 1] = kernel[1, 0] = kernel[1, 2] = IPC_NEIGHBOUR
    return dm.IPCModel(data=kernel)


def ref_persat(s: Scene) -> Any:
    return dm.PersistenceSatModel(data=np.full((s.size, s.size), 50000.0, np.float32),
                                  dq=np.zeros((s.size, s.size), np.uint32))


def ref_trapdensity(s: Scene) -> Any:
    return dm.TrapDensityModel(data=np.full((s.size, s.size), 1.0, np.float32),
                               dq=np.zeros((s.size, s.size), np.uint32))


def ref_trappars(s: Scene) -> Any:
    table = np.array([(1.0e-3, -1.0e-3, 0.0, -1.0e-3), (5.0e-4, -1.0e-3, 0.0, -1.0e-4),
                      (2.0e-4, -1.0e-3, 0.0, -1.0e-5)],
                     dtype=[("capture0", "f8"), ("capture1", "f8"), ("capture2", "f8"),
                            ("decay_param", "f8")])
    return dm.TrapParsModel(trappars_table=table)


DETECTOR1_REFS: dict[str, tuple[Callable[[Scene], Any], str]] = {
    "mask": (ref_mask, "Bad pixel mask: reference pixels and two dead pixels"),
    "saturation": (ref_saturation, "Flat 60000 DN saturation"),
    "superbias": (ref_superbias, "Bias level with pixel-to-pixel structure"),
    "linearity": (ref_linearity, "Inverse of the injected quadratic non-linearity"),
    "dark": (ref_dark, "Dark current with hot pixels, RAPID frames"),
    "readnoise": (ref_readnoise, "Uniform read noise"),
    "gain": (ref_gain, "Uniform gain"),
    "ipc": (ref_ipc, "3x3 IPC kernel matching the injected coupling"),
    "persat": (ref_persat, "Persistence saturation"),
    "trapdensity": (ref_trapdensity, "Uniform trap density"),
    "trappars": (ref_trappars, "Three trap families"),
}


# ----------------------------------------------------------------------------- CRDS cache

FILTER_PARKEY = "META.INSTRUMENT.FILTER"
PER_FILTER_TYPES = {"flat"}  # one file per filter; other types serve every filter from one

def _mapping_text(header: dict[str, Any], selector: str) -> str:
    """Mapping file text with a correct sha1sum (computed as crds does: skip that line)."""
    def render(hdr: dict[str, Any]) -> str:
        lines = ["header = {"]
        lines += [f"    {key!r} : {hdr[key]!r}," for key in sorted(hdr)]
        lines.append("}")
        return "\n".join(lines) + "\n\nselector = " + selector + "\n"

    header = dict(header, sha1sum="0")
    body = "".join(line for line in render(header).splitlines(True) if "sha1sum" not in line)
    header["sha1sum"] = hashlib.sha1(body.encode("utf-8")).hexdigest()
    return render(header)


def _match_value(params: dict[str, Any], key: str) -> str:
    value = params.get(key.lower(), params.get(key))
    if value is None or value == "" or (isinstance(value, str) and value.upper() == "UNDEFINED"):
        return "N/A"  # CRDS: not applicable, matches anything
    if isinstance(value, bool):
        return "T" if value else "F"
    return str(value).upper()


def _parkeys(spec: dict[str, Any]) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """(match keys, date keys) of a crds type spec."""
    parkey = [tuple(p) for p in spec.get("parkey", ((),))]
    match_keys = parkey[0] if parkey else ()
    date_keys = parkey[1] if len(parkey) > 1 and parkey[1] else DATE_PARKEYS
    return match_keys, date_keys


def write_rmap(mapdir: Path, kind: str, spec: dict[str, Any],
               files: list[tuple[dict[str, Any], str]], serial: str = CONTEXT_SERIAL,
               instrument: str = "nircam", author: str = "make_program.py") -> str:
    """One rmap: the installed crds's parkeys for `kind`, one UseAfter date, and one Match
    row per distinct selection among the exposures' CRDS parameters.

    `files` pairs each exposure's parameters with the reference file that serves it
    (several exposures share a row when they differ only in keys this type ignores).
    make_spectra.py writes its MIRI rmaps with it too (`instrument`, `author`)."""
    match_keys, date_keys = _parkeys(spec)
    name = f"jwst_{instrument}_{kind}_{serial}.rmap"
    header = {
        "classes": ("Match", "UseAfter"),
        "derived_from": f"jwenv {author} (synthetic)",
        "file_ext": spec.get("file_ext", ".fits"),
        "filekind": kind.upper(),
        "filetype": str(spec.get("filetype", kind)).upper(),
        "instrument": instrument.upper(),
        "mapping": "REFERENCE",
        "name": name,
        "observatory": "JWST",
        "parkey": (tuple(match_keys), tuple(date_keys)),
        "suffix": spec.get("suffix", kind),
        "text_descr": spec.get("text_descr", kind),
    }
    date = USEAFTER.replace("T", " ")

    def use_after(filename: str) -> str:
        return f"UseAfter({{\n        {date!r} : {filename!r},\n    }})"

    rows: dict[tuple[str, ...], str] = {}
    for params, filename in files:
        row = tuple(_match_value(params, key) for key in match_keys)
        if rows.setdefault(row, filename) != filename:
            raise ValueError(f"{kind}: {row} would select both {rows[row]} and {filename}")
    if match_keys:
        selector = "Match({\n" + "".join(f"    {row!r} : {use_after(rows[row])},\n"
                                          for row in sorted(rows)) + "})"
    else:  # types selected by date only (e.g. abvegaoffset)
        if len(set(rows.values())) != 1:
            raise ValueError(f"{kind} is selected by date only: one file, not {rows}")
        header.update(classes=("UseAfter",), parkey=(tuple(date_keys),))
        selector = use_after(next(iter(rows.values()))).replace("\n    ", "\n")
    (mapdir / name).write_text(_mapping_text(header, selector))
    return name


def _write_context(mapdir: Path, serial: str, selections: dict[str, str],
                   instrument: str = "nircam", author: str = "make_program.py") -> list[str]:
    """The imap (every type of the instrument: an rmap or N/A) and the pmap of context
    `serial`; returns the names of the mappings it is made of."""
    context = f"jwst_{serial}.pmap"
    imap = f"jwst_{instrument}_{serial}.imap"
    derived = f"jwenv {author} (synthetic)"
    imap_header = {"instrument": instrument.upper(), "mapping": "INSTRUMENT", "name": imap,
                   "observatory": "JWST", "parkey": ("REFTYPE",), "derived_from": derived}
    body = "{\n" + "".join(f"    {k!r} : {v!r},\n" for k, v in sorted(selections.items())) + "}"
    (mapdir / imap).write_text(_mapping_text(imap_header, body))
    pmap_header = {"mapping": "PIPELINE", "name": context, "observatory": "JWST",
                   "parkey": ("META.INSTRUMENT.NAME",), "derived_from": derived}
    (mapdir / context).write_text(
        _mapping_text(pmap_header, f"{{\n    {instrument.upper()!r} : {imap!r},\n}}"))
    return [context, imap] + [v for v in selections.values() if v != "N/A"]


def write_reference(refdir: Path, scene: Scene, params: list[dict[str, Any]], kind: str,
                    build: Callable[[Scene], Any], description: str,
                    specs: dict[str, dict[str, Any]]
                    ) -> tuple[dict[str, Any], list[tuple[dict[str, Any], str]]]:
    """Write `kind`'s reference file (one per filter for PER_FILTER_TYPES whose rmap selects
    on the filter) with the release's datamodels; returns the crds spec it was written for
    (``file_ext`` set) and, for write_rmap, each exposure's parameters with its file."""
    spec = specs.get(kind, {"parkey": (("META.INSTRUMENT.DETECTOR",), DATE_PARKEYS)})
    ext = ASDF_TYPES.get(kind, spec.get("file_ext", ".fits"))
    spec = dict(spec, file_ext=ext)
    per_filter = kind in PER_FILTER_TYPES and FILTER_PARKEY in _parkeys(spec)[0]
    files: list[tuple[dict[str, Any], str]] = []
    for i, filt in enumerate(scene.filters if per_filter else scene.filters[:1]):
        scene.use_filter(filt)
        filename = f"jwst_nircam_{kind}_{int(CONTEXT_SERIAL) + i}{ext}"
        model = build(scene)
        _ref_meta(model, scene, kind, description)
        _quiet_save(model, refdir / filename)
        files += [(p, filename) for p in params
                  if not per_filter or _match_value(p, FILTER_PARKEY) == filt.upper()]
    return spec, files


def write_crds_cache(crds_path: Path, scene: Scene, params: list[dict[str, Any]],
                     builders: dict[str, tuple[Callable[[Scene], Any], str]],
                     extra_kinds: set[str], second_filter: str | None = None
                     ) -> dict[str, Any]:
    """References, rmaps, imap, pmap and server_config.

    `params`: the CRDS parameters of every exposure the cache must serve; each rmap gets a
    Match row for each distinct selection among them (e.g. one per filter). Types in
    PER_FILTER_TYPES whose rmap selects on the filter get one file per filter of the
    scene (serials 9000, 9001, ... in the scene's filter order).

    `second_filter`: also write SECOND_CONTEXT (jwst_9001.pmap), whose flat for that filter
    is a new file (serial 9100 + the filter's index, CHANGED_FACTOR times the old flat);
    every other selection is context 9000's own rmap and file.

    Returns ``reference_types`` (the generated types), ``contexts`` and, with a second
    context, ``second_context`` (what differs: reftype, filter, old and new file)."""
    refdir = crds_path / "references" / "jwst" / "nircam"
    mapdir = crds_path / "mappings" / "jwst"
    cfgdir = crds_path / "config" / "jwst"
    for d in (refdir, mapdir, cfgdir):
        d.mkdir(parents=True, exist_ok=True)
    specs = crds_filekinds()
    selections: dict[str, str] = {}
    second: dict[str, str] = {}   # kind -> rmap of the second context, where it differs
    change: dict[str, Any] = {}
    if second_filter is not None and second_filter not in scene.filters:
        raise ValueError(f"--second-context {second_filter}: not one of the program's "
                         f"filters ({', '.join(scene.filters)})")
    if second_filter is not None and CHANGED_KIND not in builders:
        raise ValueError(f"--second-context: this program has no {CHANGED_KIND} reference")
    for kind, (build, description) in builders.items():
        spec, files = write_reference(refdir, scene, params, kind, build, description, specs)
        ext = spec["file_ext"]
        per_filter = kind in PER_FILTER_TYPES and FILTER_PARKEY in _parkeys(spec)[0]
        selections[kind] = write_rmap(mapdir, kind, spec, files)
        if second_filter is not None and kind == CHANGED_KIND:
            if not per_filter:
                raise ValueError(f"--second-context: this crds's {kind} rmap does not select "
                                 f"on {FILTER_PARKEY}, so one filter's {kind} cannot change")
            scene.use_filter(second_filter)
            index = scene.filters.index(second_filter)
            new_name = f"jwst_nircam_{kind}_{int(CONTEXT_SERIAL) + 100 + index}{ext}"
            model = build(scene)
            data = np.array(model.data, np.float32)
            data[~scene.refpix] *= CHANGED_FACTOR
            model.data = data
            _ref_meta(model, scene, kind, f"{description}, x{CHANGED_FACTOR} ({SECOND_CONTEXT})")
            _quiet_save(model, refdir / new_name)
            old_name = f"jwst_nircam_{kind}_{int(CONTEXT_SERIAL) + index}{ext}"
            changed = [(p, new_name if name == old_name else name) for p, name in files]
            second[kind] = write_rmap(mapdir, kind, spec, changed, serial=SECOND_SERIAL)
            change = {"context": SECOND_CONTEXT, "reftype": kind, "filter": second_filter,
                      "old": old_name, "new": new_name, "factor": CHANGED_FACTOR}
    for kind in sorted((set(specs) | extra_kinds) - set(selections)):
        selections[kind] = "N/A"
    mappings = _write_context(mapdir, CONTEXT_SERIAL, selections)
    contexts = [CONTEXT]
    if second:
        mappings += _write_context(mapdir, SECOND_SERIAL, dict(selections, **second))
        contexts.append(SECOND_CONTEXT)
    now = _dt.datetime.now(_dt.timezone.utc).strftime("%Y-%m-%d %H:%M:%S")
    server_config = {
        "observatory": "jwst",
        "operational_context": CONTEXT,
        "edit_context": CONTEXT,
        "versions_context": CONTEXT,
        "jwst_build_contexts": {},
        "mappings": sorted(set(mappings)),
        "bad_files": "",
        "bad_files_list": [],
        "force_remote_mode": False,
        "effective_mode": "local",
        "last_synced": now,
        "crds_version": {"str": "synthetic"},
        "reference_url": "file://" + str(crds_path / "references"),
        "mapping_url": "file://" + str(crds_path / "mappings"),
        "download_metadata": "",
    }
    (cfgdir / "server_config").write_text(pprint.pformat(server_config) + "\n")
    out: dict[str, Any] = {"reference_types": sorted(k for k, v in selections.items()
                                                     if v != "N/A"),
                           "contexts": contexts}
    if change:
        out["second_context"] = change
    return out


# ----------------------------------------------------------------------------- full program

PIXEL_SCALE = 0.0311  # arcsec/pixel, NIRCam short wave
APERTURE = {"v2_ref": 120.6714, "v3_ref": -527.3877, "v3yangle": -0.5, "vparity": -1}
PHOTMJSR = 0.25       # MJy/sr per DN/s (F200W)
PHOTMJSR_BY_FILTER = {"F200W": PHOTMJSR, "F150W": 0.3}  # round numbers, one per filter
ABVEGA = {"F150W": 1.2, "F200W": 1.6}  # AB - Vega (mag), roughly NIRCam's


def photmjsr(name: str) -> float:
    """The photometric conversion of a filter (others: a round number by wavelength)."""
    return PHOTMJSR_BY_FILTER.get(name, round(0.2 + int(name[1:4]) / 1000.0, 3))

PIXAR_SR = (PIXEL_SCALE / 206264.80624709636) ** 2
VA_SCALE = 1.00002    # differential velocity aberration: a realistic, tiny plate scale change


def distortion_model(scene: Scene) -> Any:
    """Linear full-frame pixel -> V2/V3 (arcsec) model: the aperture's SIAF ideal frame.

    The reference pixel is the subarray centre (where wcsinfo's v2_ref/v3_ref point)."""
    from astropy.modeling import models

    ref = (scene.size - 1) / 2.0  # full-frame 0-based, subarray starts at (1, 1)
    theta = np.deg2rad(APERTURE["v3yangle"])
    par = APERTURE["vparity"]
    matrix = PIXEL_SCALE * np.array([[par * np.cos(theta), np.sin(theta)],
                                     [-par * np.sin(theta), np.cos(theta)]])
    affine = models.AffineTransformation2D(
        matrix=matrix, translation=[APERTURE["v2_ref"], APERTURE["v3_ref"]])
    return models.Shift(-ref) & models.Shift(-ref) | affine


def _wcs_model(scene: Scene, ra: float, dec: float, roll: float) -> Any:
    """A bare ImageModel carrying the pointing, for jwst's own v23tosky."""
    model = dm.ImageModel((scene.size, scene.size))
    _set(model.meta.wcsinfo, ra_ref=ra, dec_ref=dec, roll_ref=roll,
         v2_ref=APERTURE["v2_ref"], v3_ref=APERTURE["v3_ref"],
         v3yangle=APERTURE["v3yangle"], vparity=APERTURE["vparity"])
    return model


def sky_transform(scene: Scene, ra: float, dec: float, roll: float) -> Any:
    """Subarray pixel (0-based) -> (RA, Dec), built like assign_wcs builds NIRCam imaging.

    A release whose assign_wcs has no velocity-aberration model (0.15-era: no
    ``pointing.dva_corr_model``) leaves it out, as its own WCS does."""
    from astropy.modeling import models
    from jwst.assign_wcs import pointing

    wcs_model = _wcs_model(scene, ra, dec, roll)
    tel2sky = pointing.v23tosky(wcs_model)
    wcs_model.close()
    transform = models.Shift(0) & models.Shift(0) | distortion_model(scene)
    if hasattr(pointing, "dva_corr_model"):
        transform = transform | pointing.dva_corr_model(
            va_scale=VA_SCALE, v2_ref=APERTURE["v2_ref"], v3_ref=APERTURE["v3_ref"])
    return transform | tel2sky


def _set_pointing(model: Any, scene: Scene, ra: float, dec: float, roll: float) -> None:
    """wcsinfo, pointing, velocity aberration: the header a real exposure would have."""
    transform = sky_transform(scene, ra, dec, roll)
    ref = (scene.size - 1) / 2.0
    # Local CD matrix from the transform itself (deg/pixel, tangent-plane approximation).
    ra0, dec0 = transform(ref, ref)
    cd = np.zeros((2, 2))
    for j, (dx, dy) in enumerate(((1.0, 0.0), (0.0, 1.0))):
        ra1, dec1 = transform(ref + dx, ref + dy)
        cd[0, j] = ((ra1 - ra0 + 180) % 360 - 180) * np.cos(np.deg2rad(dec0))
        cd[1, j] = dec1 - dec0
    cdelt = PIXEL_SCALE / 3600.0
    pc = cd / cdelt
    from jwst.assign_wcs import pointing

    wcs_model = _wcs_model(scene, ra, dec, roll)
    ra_v1, dec_v1 = pointing.v23tosky(wcs_model)(0.0, 0.0)
    wcs_model.close()
    _set(model.meta.wcsinfo, wcsaxes=2, ctype1="RA---TAN", ctype2="DEC--TAN", cunit1="deg",
         cunit2="deg", crpix1=ref + 1, crpix2=ref + 1, crval1=float(ra0), crval2=float(dec0),
         cdelt1=cdelt, cdelt2=cdelt, pc1_1=float(pc[0, 0]), pc1_2=float(pc[0, 1]),
         pc2_1=float(pc[1, 0]), pc2_2=float(pc[1, 1]), ra_ref=ra, dec_ref=dec,
         roll_ref=roll, v2_ref=APERTURE["v2_ref"], v3_ref=APERTURE["v3_ref"],
         v3yangle=APERTURE["v3yangle"], vparity=APERTURE["vparity"],
         siaf_xref_sci=ref + 1, siaf_yref_sci=ref + 1, velosys=0.0)
    with contextlib.suppress(Exception):
        model.meta.wcsinfo.aperture_name = f"NRCB1_{scene.subarray}"
    with contextlib.suppress(Exception):
        model.meta.aperture.name = f"NRCB1_{scene.subarray}"
    _set(model.meta.pointing, ra_v1=float(ra_v1), dec_v1=float(dec_v1), pa_v3=roll)
    _set(model.meta.velocity_aberration, scale_factor=VA_SCALE, va_ra_ref=ra, va_dec_ref=dec)
    with contextlib.suppress(Exception):
        model.meta.photometry.pixelarea_steradians = PIXAR_SR
        model.meta.photometry.pixelarea_arcsecsq = PIXEL_SCALE**2


def ref_distortion(s: Scene) -> Any:
    import astropy.units as u

    model = dm.DistortionModel(model=distortion_model(s))
    model.meta.input_units = u.pix
    model.meta.output_units = u.arcsec
    with contextlib.suppress(Exception):
        model.meta.instrument.p_pupil = "ANY|"
        model.meta.exposure.p_exptype = "NRC_IMAGE|NRC_TSIMAGE|NRC_FLAT|NRC_LED|NRC_WFSC|"
    return model


def ref_filteroffset(s: Scene) -> Any:
    model = dm.FilteroffsetModel()
    model.filters = [{"filter": f, "pupil": INSTRUMENT["pupil"], "column_offset": 0.0,
                      "row_offset": 0.0} for f in s.filters]
    return model


def ref_flat(s: Scene) -> Any:
    return dm.FlatModel(data=s.flat.copy(), err=np.full(s.flat.shape, 0.005, np.float32),
                        dq=np.zeros(s.flat.shape, np.uint32))


def ref_photom(s: Scene) -> Any:
    filters = list(dict.fromkeys([*s.filters, *PHOTMJSR_BY_FILTER]))
    table = np.array([(f, INSTRUMENT["pupil"], photmjsr(f), 0.005) for f in filters],
                     dtype=[("filter", "S12"), ("pupil", "S12"), ("photmjsr", "f4"),
                            ("uncertainty", "f4")])
    model = dm.NrcImgPhotomModel(phot_table=table)
    model.meta.photometry.pixelarea_steradians = PIXAR_SR
    model.meta.photometry.pixelarea_arcsecsq = PIXEL_SCALE**2
    return model


def ref_area(s: Scene) -> Any:
    model = dm.PixelAreaModel(data=np.ones((s.size, s.size), np.float32))
    model.meta.photometry.pixelarea_steradians = PIXAR_SR
    model.meta.photometry.pixelarea_arcsecsq = PIXEL_SCALE**2
    return model


def ref_apcorr(s: Scene) -> Any:
    """Encircled energy of the injected Gaussian PSF: r(ee) = sigma * sqrt(-2 ln(1 - ee))."""
    rows = []
    for ee in (0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.85):
        radius = PSF_SIGMA * np.sqrt(-2 * np.log(1 - ee))
        rows += [(f, INSTRUMENT["pupil"], ee, radius, 1 / ee, 8.0, 12.0) for f in s.filters]
    table = np.array(rows, dtype=[("filter", "S12"), ("pupil", "S15"), ("eefraction", "f4"),
                                  ("radius", "f4"), ("apcorr", "f4"), ("skyin", "f4"),
                                  ("skyout", "f4")])
    return dm.NrcImgApcorrModel(apcorr_table=table)


def ref_abvegaoffset(s: Scene) -> Any:
    from astropy.table import Table

    table = Table({"filter": list(s.filters), "pupil": [INSTRUMENT["pupil"]] * len(s.filters),
                   "abvega_offset": [ABVEGA.get(f, 1.6) for f in s.filters]})
    model = dm.ABVegaOffsetModel()
    model.abvega_offset = table  # assigned, not passed: the constructor would wrap it in a node
    return model


def ref_drizpars(s: Scene) -> Any:
    """One wild-card row with the resample step's own defaults (releases whose resample
    step still reads drizpars; those that take its values use these)."""
    table = np.array([(1, "ANY", 1.0, "square", "INDEF", "exptime", 10)],
                     dtype=[("numimages", "i4"), ("filter", "S40"), ("pixfrac", "f4"),
                            ("kernel", "S10"), ("fillval", "S10"), ("wht_type", "S10"),
                            ("stepsize", "i4")])
    return dm.DrizParsModel(data=table)


CHAIN_REFS: dict[str, tuple[Callable[[Scene], Any], str]] = {
    **DETECTOR1_REFS,
    "distortion": (ref_distortion, "Linear pixel to V2/V3 model (no distortion)"),
    "filteroffset": (ref_filteroffset, "Zero filter offset"),
    "flat": (ref_flat, "Pixel response injected into the data"),
    "photom": (ref_photom, "Round-number photometric conversion"),
    "area": (ref_area, "Uniform pixel area"),
    "drizpars": (ref_drizpars, "Default drizzle parameters"),
    "apcorr": (ref_apcorr, "Gaussian-PSF aperture corrections"),
    "abvegaoffset": (ref_abvegaoffset, "AB to Vega offset"),
}
CHAIN_PIPELINES = ["jwst.pipeline.Detector1Pipeline", "jwst.pipeline.Image2Pipeline",
                   "jwst.pipeline.Image3Pipeline"]


def chain_builders(wanted: dict[str, list[str]]) -> dict[str, tuple[Callable[[Scene], Any], str]]:
    """The stage 1-3 references this release uses: every Detector1 type, and each stage-2/3
    type that one of its steps declares (`wanted`, from pipeline_reftypes) and its crds knows
    for NIRCam. A probe of the release, not a version table: 0.15.1 declares drizpars
    (resample) and neither apcorr nor abvegaoffset (its source catalog reads no reference),
    and its crds has no NIRCam filteroffset; 1.12.5 uses all eight; 1.20.2 and 3.0.0 all but
    drizpars."""
    declared = {t for types in wanted.values() for t in types}
    if not declared:  # the pipelines could not be imported: write everything
        return dict(CHAIN_REFS)
    known = set(crds_filekinds())
    return {kind: build for kind, build in CHAIN_REFS.items()
            if kind in DETECTOR1_REFS or (kind in declared and kind in known)}


def make_full_program(out: Path, seed: int, size: int = 400,
                      second_filter: str | None = None) -> dict[str, Any]:
    """Two dithered star-field exposures plus a dedicated background, for stages 1-3."""
    data_dir = out / "data"
    data_dir.mkdir(parents=True, exist_ok=True)
    scene = Scene(size, seed)
    rng = scene.rng
    yy, xx = np.mgrid[0:size, 0:size] / size
    scene.flat = (1 + 0.03 * np.sin(2 * np.pi * xx) * np.cos(np.pi * yy)
                  + rng.normal(0, 0.005, (size, size))).astype(np.float32)
    scene.flat[scene.refpix] = 1.0
    sky = 3.0
    ra0, dec0, roll = 53.16, -27.78, 240.0
    dither = (24.0, 17.0)  # pixels
    pointing_error = (0.12, -0.09)  # arcsec (dRA cos dec, dDec) in exposure 2's header only

    t1 = sky_transform(scene, ra0, dec0, roll)
    ref = (size - 1) / 2.0
    ra2, dec2 = (float(v) for v in t1(ref + dither[0], ref + dither[1]))
    t2 = sky_transform(scene, ra2, dec2, roll)

    n_stars = 40
    min_sep = 10.0  # pixels: no blends, so every star is a clean catalog match
    x1_list: list[float] = []
    y1_list: list[float] = []
    while len(x1_list) < n_stars:
        x, y = rng.uniform(12, size - 12, 2)
        if all((x - u) ** 2 + (y - v) ** 2 > min_sep**2 for u, v in zip(x1_list, y1_list)):  # noqa: B905
            x1_list.append(float(x))
            y1_list.append(float(y))
    x1, y1 = np.array(x1_list), np.array(y1_list)
    flux = 10 ** rng.uniform(np.log10(2000), np.log10(40000), n_stars)  # DN/s, total
    ra, dec = t1(x1, y1)
    x2, y2 = t2.inverse(ra, dec)

    from astropy.table import Table

    truth = Table({"id": np.arange(1, n_stars + 1), "ra": ra, "dec": dec,
                   "flux_dn_s": flux, "x_exp1": x1, "y_exp1": y1, "x_exp2": x2, "y_exp2": y2})
    truth.meta.update({"frame": "icrs", "psf_sigma_pix": PSF_SIGMA, "sky_dn_s": sky,
                       "pointing_error_arcsec_exp2": list(pointing_error)})
    truth_path = out / "truth.ecsv"
    truth.write(truth_path, format="ascii.ecsv", overwrite=True)

    start = _dt.datetime(2023, 5, 1, 12, 0, 0)
    step = _dt.timedelta(minutes=3)
    exposures = []
    dec_err = dec2 + pointing_error[1] / 3600.0
    ra_err = ra2 + pointing_error[0] / 3600.0 / np.cos(np.deg2rad(dec2))
    specs = [  # (obs, exposure, dither, header pointing, sources)
        ("001", 1, 1, (ra0, dec0), list(zip(x1, y1, flux))),  # noqa: B905 (py3.8)
        ("001", 2, 2, (ra_err, dec_err), list(zip(x2, y2, flux))),  # noqa: B905
        ("002", 1, 1, (ra0 + 0.2, dec0 + 0.2), []),
    ]
    for i, (obs_num, exp_num, dither_pos, (ra_h, dec_h), sources) in enumerate(specs):
        obs = _obs("01234", obs_num, "001", exp_num, dither_pos, start + i * step, ra0, dec0)
        path = data_dir / obs["filename"]
        model_cls = getattr(dm, "Level1bModel", None) or dm.RampModel
        model = model_cls(data=scene.ramp(scene.rate(sky, sources)))
        _exposure_meta(model, scene, obs=obs)
        _set_pointing(model, scene, ra_h, dec_h, roll)
        background = not sources
        _set(model.meta.dither, primary_type="NONE" if background else "FULLBOX",
             position_number=dither_pos, total_points=1 if background else 2)
        with contextlib.suppress(Exception):
            model.meta.observation.bkgdtarg = background
        if background:
            model.meta.target.catalog_name = "SYNTHETIC-BACKGROUND"
        _quiet_save(model, path)
        exposures.append(path)

    if not refpix_accepts_unusable(scene, exposures[0]):
        scene.use_reference_pixels()
    params = crds_params(exposures[0])
    wanted, pars = pipeline_reftypes(CHAIN_PIPELINES)
    extra = {t for types in wanted.values() for t in types} | pars
    cache = write_crds_cache(out / "crds", scene, [params], chain_builders(wanted), extra,
                             second_filter)
    if "second_context" in cache:
        cache["second_context"]["exposures"] = [str(p) for p in exposures]

    # No association files: jwenv groups the exposures with the release's own rules.
    return {"context": CONTEXT, "crds_path": str(out / "crds"),
            "uncal": [str(p) for p in exposures], **cache,
            "truth": str(truth_path), "refpix_flags": scene.refpix_flags,
            "size": size, "seed": seed}


# ----------------------------------------------------------------------------- whole program

# NIRCam short-wave filters (what NRCB1 sees behind CLEAR); the pupil stays CLEAR.
SW_FILTERS = ("F070W", "F090W", "F115W", "F140M", "F150W", "F150W2", "F162M", "F164N",
              "F182M", "F187N", "F200W", "F210M", "F212N")
FIELDS = [  # one target per observation: (TARGPROP, RA, Dec), well-known deep fields
    ("GOODS-S", 53.16, -27.78), ("COSMOS", 150.12, 2.21), ("GOODS-N", 189.23, 62.24),
    ("UDS", 34.41, -5.20), ("EGS", 214.83, 52.82), ("ABELL2744", 3.58, -30.40)]
DITHERS = [(0.0, 0.0), (24.0, 17.0), (-17.0, 24.0), (17.0, -24.0), (-24.0, -17.0),
           (30.0, 6.0), (-6.0, 30.0), (6.0, -30.0)]  # pixels for a 400x400 subarray
# Only 400x400 (SUB400P): tweakreg's defaults need >= 15 matched sources at least 1"
# (32 px) apart in each pair of exposures, which a 160x160 subarray cannot hold (measured:
# 10 matches at 160, so its pointing error stays and the catalog misses the truth).
WHOLE_SIZES = (400,)
WHOLE_SIZE = 400
STAR_SEPARATION = 36.0  # px (1.1"): more than tweakreg's `separation` (1"), so every star
                        # is usable for alignment and a clean, unblended catalog match
POINTING_ERROR = (0.12, -0.09)  # arcsec (dRA cos dec, dDec), in one exposure's header


def _place_stars(rng: Any, n: int, size: int, margin: float = 12.0,
                 min_sep: float = 10.0) -> tuple[np.ndarray, np.ndarray]:
    """`n` positions at least `min_sep` pixels apart (no blends: every star is a clean
    catalog match), `margin` pixels inside the frame."""
    xs: list[float] = []
    ys: list[float] = []
    for _ in range(200000):
        if len(xs) == n:
            break
        x, y = rng.uniform(margin, size - margin, 2)
        if all((x - u) ** 2 + (y - v) ** 2 > min_sep**2 for u, v in zip(xs, ys)):  # noqa: B905
            xs.append(float(x))
            ys.append(float(y))
    else:
        raise ValueError(f"cannot place {n} stars {min_sep} px apart in {size}x{size}")
    return np.array(xs), np.array(ys)


def _write_exposure(scene: Scene, path: Path, obs: dict[str, Any],
                    pointing: tuple[float, float], roll: float,
                    sources: list[tuple[float, float, float]], sky: float,
                    total_points: int, background: bool = False) -> Path:
    """One exposure of the whole program, in the scene's current filter."""
    model_cls = getattr(dm, "Level1bModel", None) or dm.RampModel
    model = model_cls(data=scene.ramp(scene.rate(sky, sources)))
    _exposure_meta(model, scene, obs=obs)
    _set_pointing(model, scene, pointing[0], pointing[1], roll)
    _set(model.meta.dither, primary_type="FULLBOX" if total_points > 1 else "NONE",
         position_number=obs["dither"], total_points=total_points)
    with contextlib.suppress(Exception):
        model.meta.observation.bkgdtarg = background
    _quiet_save(model, path)
    return path


def make_whole_program(out: Path, seed: int, size: int, n_obs: int, filters: list[str],
                       n_dithers: int, second_filter: str | None = None) -> dict[str, Any]:
    """Several observations of different targets, each in every filter with `n_dithers`
    dithers, plus one background exposure per filter; references for every filter.

    No association is written: the release's own rules make them from the headers."""
    data_dir = out / "data"
    data_dir.mkdir(parents=True, exist_ok=True)
    scene = Scene(size, seed)
    rng = scene.rng
    scene.filters = list(filters)
    yy, xx = np.mgrid[0:size, 0:size] / size
    for k, name in enumerate(filters):  # a different pixel response per filter
        flat = (1 + 0.03 * np.sin(2 * np.pi * xx + k) * np.cos(np.pi * yy)
                + rng.normal(0, 0.005, (size, size))).astype(np.float32)
        flat[scene.refpix] = 1.0
        scene.flats[name] = flat
    sky = {name: 2.0 + k for k, name in enumerate(filters)}  # DN/s
    scale = size / 400.0
    offsets = [(dx * scale, dy * scale) for dx, dy in DITHERS[:n_dithers]]
    n_stars = 40
    ref = (size - 1) / 2.0
    program, visit = "01234", "001"
    start = _dt.datetime(2023, 5, 1, 12, 0, 0)
    step = _dt.timedelta(minutes=3)
    uncal: list[Path] = []
    observations: list[dict[str, Any]] = []

    from astropy.table import Table

    for i in range(n_obs):
        obs_num = f"{i + 1:03d}"
        targprop, ra0, dec0 = FIELDS[i]
        target = {"targprop": targprop, "targname": f"SYNTH-{targprop}"}
        roll = (240.0 + 35.0 * i) % 360.0
        t_ref = sky_transform(scene, ra0, dec0, roll)
        # in dither 1's frame: it sees every star, so tweakreg takes it as the reference
        x, y = _place_stars(rng, n_stars, size, min_sep=STAR_SEPARATION)
        ra, dec = t_ref(x, y)
        base = 10 ** rng.uniform(np.log10(2000), np.log10(40000), n_stars)  # DN/s, total
        flux = {name: base * rng.uniform(0.6, 1.0, n_stars) for name in filters}
        # One exposure per observation has a pointing error in its header (tweakreg fixes
        # it): the last dither, in a different filter for each observation.
        error_at = (filters[i % len(filters)], n_dithers) if n_dithers > 1 else None
        exposures: dict[str, list[str]] = {}
        error_file = None
        for k, name in enumerate(filters):
            scene.use_filter(name)
            activity = f"{k + 1:02d}"  # one activity per filter, exposures 1..n_dithers
            for d, (dx, dy) in enumerate(offsets, 1):
                ra_d, dec_d = (float(v) for v in t_ref(ref + dx, ref + dy))
                xd, yd = sky_transform(scene, ra_d, dec_d, roll).inverse(ra, dec)
                ra_h, dec_h = ra_d, dec_d
                if error_at == (name, d):
                    ra_h += POINTING_ERROR[0] / 3600.0 / np.cos(np.deg2rad(dec_d))
                    dec_h += POINTING_ERROR[1] / 3600.0
                obs = _obs(program, obs_num, visit, d, d, start + len(uncal) * step, ra0, dec0,
                           activity=activity, filter=name, **target)
                path = _write_exposure(scene, data_dir / obs["filename"], obs, (ra_h, dec_h),
                                       roll, list(zip(xd, yd, flux[name])),  # noqa: B905
                                       sky[name], n_dithers)
                uncal.append(path)
                exposures.setdefault(name, []).append(str(path))
                if error_at == (name, d):
                    error_file = str(path)
        columns = {"id": np.arange(1, n_stars + 1), "ra": ra, "dec": dec, "x_dither1": x,
                   "y_dither1": y}
        columns.update({f"flux_dn_s_{name.lower()}": flux[name] for name in filters})
        truth = Table(columns)
        truth.meta.update({"frame": "icrs", "observation": obs_num, **target,
                           "psf_sigma_pix": PSF_SIGMA, "sky_dn_s": sky,
                           "pointing_error_arcsec": list(POINTING_ERROR),
                           "pointing_error_file": Path(error_file).name if error_file else None})
        truth_path = out / f"truth_o{obs_num}.ecsv"
        truth.write(truth_path, format="ascii.ecsv", overwrite=True)
        observations.append({
            "observation": obs_num,
            "target": {**target, "ra": ra0, "dec": dec0, "roll": roll},
            "truth": str(truth_path), "stars": n_stars,
            "exposures": [p for name in filters for p in exposures[name]],
            "by_filter": exposures, "pointing_error_file": error_file})

    # The background: its own observation and target (BKGDTARG=T), one star-free exposure
    # per filter (level-2 rules take background members of the same filter only).
    background: list[str] = []
    bkg_obs = f"{n_obs + 1:03d}"
    ra_b, dec_b = FIELDS[0][1] + 0.2, FIELDS[0][2] + 0.2
    for k, name in enumerate(filters):
        scene.use_filter(name)
        obs = _obs(program, bkg_obs, visit, 1, 1, start + len(uncal) * step, ra_b, dec_b,
                   activity=f"{k + 1:02d}", filter=name, targprop="BACKGROUND",
                   targname="SYNTH-BACKGROUND")
        path = _write_exposure(scene, data_dir / obs["filename"], obs, (ra_b, dec_b), 240.0,
                               [], sky[name], 1, background=True)
        uncal.append(path)
        background.append(str(path))

    if not refpix_accepts_unusable(scene, uncal[0]):
        scene.use_reference_pixels()
    params = [crds_params(p) for p in uncal]
    wanted, pars = pipeline_reftypes(CHAIN_PIPELINES)
    extra = {t for types in wanted.values() for t in types} | pars
    cache = write_crds_cache(out / "crds", scene, params, chain_builders(wanted), extra,
                             second_filter)
    if "second_context" in cache:  # the exposures whose selection differs
        cache["second_context"]["exposures"] = [
            str(p) for p, par in zip(uncal, params)  # noqa: B905 (py3.6)
            if _match_value(par, FILTER_PARKEY) == second_filter]
    return {"context": CONTEXT, "crds_path": str(out / "crds"), "program": program,
            "uncal": [str(p) for p in uncal], "background": background,
            "observations": observations, "filters": list(filters), "dithers": n_dithers,
            **cache, "size": size, "subarray": scene.subarray,
            "refpix_flags": scene.refpix_flags, "seed": seed}


# ----------------------------------------------------------------------------- main

def _obs(program: str, observation: str, visit: str, exposure: int, dither: int,
         start: _dt.datetime, ra: float, dec: float, activity: str = "01",
         **extra: Any) -> dict[str, Any]:
    """One exposure's identity: DMS file name (visit group 01, parallel sequence 1) and the
    header values that name it. `extra`: filter, targprop, targname (see _exposure_meta)."""
    visit_id = f"{program}{observation}{visit}"
    name = f"jw{program}{observation}{visit}_{'01'}{'1'}{activity}_{exposure:05d}_nrcb1_uncal.fits"
    return {"program": program, "observation": observation, "visit": visit,
            "exposure": str(exposure), "activity": activity, "dither": dither,
            "obs_id": f"V{visit_id}P00000000{'01'}{'1'}{activity}", "visit_id": visit_id,
            "start": start, "ra": ra, "dec": dec, "filename": name, **extra}


def crds_params(path: Path) -> dict[str, Any]:
    """The parameters CRDS sees for an exposure (what the pipeline passes to bestrefs)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with dm.open(str(path)) as model:
            if hasattr(type(model), "get_crds_parameters"):
                return dict(model.get_crds_parameters())
            # releases <= 0.16: stpipe's crds_client flattens the tree itself
            flat = model.to_flat_dict(include_arrays=False)
            return {key: value for key, value in flat.items()
                    if isinstance(value, (str, int, float, complex, bool))}


def make_detector1(out: Path, size: int, seed: int) -> dict[str, Any]:
    """Small single-exposure program for Detector1Pipeline."""
    data_dir = out / "data"
    data_dir.mkdir(parents=True, exist_ok=True)
    scene = Scene(size, seed)
    rng = scene.rng
    n_src = max(3, size * size // 800)
    sources = [(float(rng.uniform(8, size - 4)), float(rng.uniform(8, size - 4)),
                float(rng.uniform(2e4, 1.5e5))) for _ in range(n_src)]
    obs = _obs("01234", "001", "001", 1, 1, _dt.datetime(2023, 5, 1, 12, 0, 0), 53.16, -27.78)
    uncal = make_uncal(scene, data_dir / obs["filename"], obs, sources, sky=150.0)
    if not refpix_accepts_unusable(scene, uncal):
        scene.use_reference_pixels()
    params = crds_params(uncal)
    wanted, pars = pipeline_reftypes(["jwst.pipeline.Detector1Pipeline"])
    extra = {t for types in wanted.values() for t in types} | pars
    cache = write_crds_cache(out / "crds", scene, [params], DETECTOR1_REFS, extra)
    # Every step that runs by default for NIRCam imaging gets its references; steps whose
    # types are N/A here (emicorr, rscd, reset: MIRI) either are not run or skip themselves.
    return {"context": CONTEXT, "crds_path": str(out / "crds"), "uncal": [str(uncal)],
            **cache, "refpix_flags": scene.refpix_flags,
            "size": size, "seed": seed}


# Reference types whose content is the generated scene itself (its bias, dark, bad pixels,
# pixel response): only the generating run can write them, never --extend.
SCENE_TYPES = {"mask", "superbias", "dark", "flat"}


def _read_imap(imap: Path) -> tuple[dict[str, Any], dict[str, str]]:
    import ast

    text = imap.read_text()
    header = ast.literal_eval(text.split("header = ", 1)[1].split("\n\nselector = ", 1)[0])
    return header, ast.literal_eval(text.split("selector = ", 1)[1])


def _write_imap(imap: Path, header: dict[str, Any], selections: dict[str, str]) -> None:
    header = {k: v for k, v in header.items() if k != "sha1sum"}
    body = "{\n" + "".join(f"    {k!r} : {v!r},\n" for k, v in sorted(selections.items()))
    imap.write_text(_mapping_text(header, body + "}"))


def extend_references(out: Path, selections: dict[str, str],
                      wanted: dict[str, list[str]]) -> dict[str, str]:
    """References for the stage-2/3 types *this* release's steps use that the cache (made
    by an older release, for the chain) maps to N/A or lacks: e.g. apcorr and abvegaoffset
    for a current source catalog in a program 0.15.1 made (its catalog step reads none).
    Written with this release's datamodels: only this release and newer ones read them
    (an older one that used a type would have written it). Returns kind -> new rmap; {} for
    a Detector1-only cache (no distortion rmap: no stage-2/3 references to complete)."""
    if selections.get("distortion", "N/A") == "N/A":
        return {}
    missing = {kind: build for kind, build in chain_builders(wanted).items()
               if selections.get(kind, "N/A") == "N/A" and kind not in SCENE_TYPES}
    uncal = sorted((out / "data").glob("*_uncal.fits"))
    if not missing or not uncal:
        return {}
    params = [crds_params(p) for p in uncal]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with dm.open(str(uncal[0])) as model:
            size = int(model.data.shape[-1])
    scene = Scene(size, 0)
    scene.filters = list(dict.fromkeys(_match_value(p, FILTER_PARKEY) for p in params))
    scene.use_filter(scene.filters[0])
    refdir = out / "crds" / "references" / "jwst" / "nircam"
    mapdir = out / "crds" / "mappings" / "jwst"
    specs = crds_filekinds()
    added: dict[str, str] = {}
    for kind, (build, description) in missing.items():
        spec, files = write_reference(refdir, scene, params, kind, build, description, specs)
        added[kind] = write_rmap(mapdir, kind, spec, files)
    return added


def extend_mappings(out: Path) -> dict[str, Any]:
    """Top up a cache made earlier by an older release for what *this* release asks for.

    The program is generated once, by the oldest release that will read it (files
    written by an older datamodels load in newer releases, not always the reverse).
    A newer release may ask CRDS for types that did not exist then (e.g. chromcorr in
    3.0's Image2) and CRDS refuses an unknown type: each newer release maps them to N/A.
    Its stage-2/3 steps may also need references the older one did not use (a chain
    program made by 0.15.1 has no apcorr or abvegaoffset): extend_references writes them.
    Every generated context is extended (jwst_9000.pmap, and jwst_9001.pmap if the cache
    was made with --second-context): only its imap changes; the pmap names it, and a
    mapping's checksum covers its own text only.
    """
    mapdir = out / "crds" / "mappings" / "jwst"
    wanted, pars = pipeline_reftypes(CHAIN_PIPELINES)
    known = set(crds_filekinds()) | {t for types in wanted.values() for t in types} | pars
    _, selections = _read_imap(mapdir / f"jwst_nircam_{CONTEXT_SERIAL}.imap")
    references = extend_references(out, selections, wanted)
    contexts: list[str] = []
    added: list[str] = []
    for serial in (CONTEXT_SERIAL, SECOND_SERIAL):
        imap = mapdir / f"jwst_nircam_{serial}.imap"
        if serial != CONTEXT_SERIAL and not imap.is_file():
            continue
        contexts.append(f"jwst_{serial}.pmap")
        header, selections = _read_imap(imap)
        new = sorted(known - set(selections) - set(references))
        if new or references:
            selections.update({kind: "N/A" for kind in new})
            selections.update(references)
            _write_imap(imap, header, selections)
        added += [kind for kind in new if kind not in added]
    if references:  # the cache's list of its mappings names the new rmaps too
        import ast

        config = out / "crds" / "config" / "jwst" / "server_config"
        server_config = ast.literal_eval(config.read_text())
        server_config["mappings"] = sorted(set(server_config.get("mappings", []))
                                           | set(references.values()))
        config.write_text(pprint.pformat(server_config) + "\n")
    return {"context": CONTEXT, "contexts": contexts, "crds_path": str(out / "crds"),
            "added_na_types": sorted(added), "added_reference_types": sorted(references)}


def _one_filter(text: str) -> str:
    name = text.strip().upper()
    if name and name not in SW_FILTERS:  # "": the flag without a value (the default)
        raise argparse.ArgumentTypeError(
            f"a NIRCam short-wave filter ({', '.join(SW_FILTERS)})")
    return name


def _filter_list(text: str) -> list[str]:
    names = [f.strip().upper() for f in text.split(",") if f.strip()]
    bad = [f for f in names if f not in SW_FILTERS]
    if bad or not names or len(set(names)) != len(names):
        raise argparse.ArgumentTypeError(
            f"distinct NIRCam short-wave filters, comma-separated ({', '.join(SW_FILTERS)})")
    return names


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", required=True, type=Path, help="output directory")
    parser.add_argument("--size", type=int, default=None, choices=sorted(SUBARRAYS),
                        help="subarray size in pixels (a real NIRCam subarray): default 64; "
                             "--program is always 400 (SUB400P)")
    parser.add_argument("--seed", type=int, default=0, help="random seed (deterministic)")
    parser.add_argument("--program", action="store_true",
                        help="full Detector1 -> Image2 -> Image3 program (400x400, 3 exposures)")
    whole = parser.add_argument_group(
        "whole program", "any of these makes --program a whole program: several observations "
        "of different targets, each in every filter with N dithers, one background exposure "
        "per filter, one truth table per observation, no association files")
    whole.add_argument("--observations", type=int, metavar="N",
                       help=f"observations, each of its own target (1-{len(FIELDS)}; default 2)")
    whole.add_argument("--filters", type=_filter_list, metavar="F1,F2",
                       help="NIRCam short-wave filters (default F150W,F200W)")
    whole.add_argument("--dithers", type=int, metavar="N",
                       help=f"dithers per observation and filter (1-{len(DITHERS)}; default 2)")
    parser.add_argument("--second-context", nargs="?", const="", type=_one_filter,
                        metavar="FILTER",
                        help=f"--program or a whole program: also write {SECOND_CONTEXT}, "
                             f"the same as {CONTEXT} but for FILTER's flat (default F150W; "
                             f"--program: F200W, its only filter), a new file "
                             f"{CHANGED_FACTOR}x the old one")
    parser.add_argument("--extend", action="store_true",
                        help="only add N/A mappings for reference types this release knows "
                             "to a cache made earlier (by an older release) in --out")
    args = parser.parse_args(argv)
    out = args.out.resolve()
    is_whole = any(v is not None for v in (args.observations, args.filters, args.dithers))
    if args.extend:
        result = extend_mappings(out)
    elif is_whole:
        n_obs = 2 if args.observations is None else args.observations
        n_dithers = 2 if args.dithers is None else args.dithers
        size = WHOLE_SIZE if args.size is None else args.size
        if not 1 <= n_obs <= len(FIELDS):
            parser.error(f"--observations: 1 to {len(FIELDS)}")
        if not 1 <= n_dithers <= len(DITHERS):
            parser.error(f"--dithers: 1 to {len(DITHERS)}")
        if size not in WHOLE_SIZES:
            parser.error(f"--size: a whole program is {WHOLE_SIZE}x{WHOLE_SIZE} (tweakreg "
                         "needs 15 stars 1\" apart in every exposure)")
        filters = args.filters or ["F150W", "F200W"]
        second = args.second_context
        if second == "":
            second = "F150W" if "F150W" in filters else filters[0]
        if second is not None and second not in filters:
            parser.error(f"--second-context {second}: not one of --filters")
        result = make_whole_program(out, args.seed, size, n_obs, filters, n_dithers, second)
    elif args.program:
        if args.second_context not in (None, "", INSTRUMENT["filter"]):
            parser.error(f"--second-context: --program is {INSTRUMENT['filter']} only")
        second = None if args.second_context is None else INSTRUMENT["filter"]
        result = make_full_program(out, args.seed, second_filter=second)
    elif args.second_context is not None:
        parser.error("--second-context needs --program or a whole program (a flat to change)")
    else:
        result = make_detector1(out, 64 if args.size is None else args.size, args.seed)
    sys.stdout.write(json.dumps(result) + "\n")
    return 0

if __name__ == "__main__":
    sys.exit(main())
