#!/usr/bin/env python
"""Make a synthetic MIRI LRS fixed-slit program and a local CRDS cache that serves it offline.

Standalone, like make_program.py (whose CRDS-mapping helpers it imports: scripts run
with their directory on sys.path): it runs under a *managed* environment's own
interpreter, so every reference file and both exposures are written by the release's own
datamodels, and the trace is placed with the release's own LRS WCS code.

    <env>/bin/python make_spectra.py --out DIR [--seed 0]
    <env>/bin/python make_spectra.py --out DIR --extend     # a newer release: N/A types

writes

- ``DIR/data/jw01234001001_01101_0000{1,2}_mirimage_uncal.fits``: one point source seen
  through the LRS slit (EXP_TYPE MIR_LRS-FIXEDSLIT, P750L, FULL) at two nod positions
  along the slit (PATTTYPE ALONG-SLIT-NOD, PATT_NUM 1 and 2, XOFFSET +/-1.1"), with a sky
  that fills the slit; no association files (the release's own rules pair the nods);
- ``DIR/truth_spectrum.ecsv``: wavelength (um) -> flux density (Jy) of the source, its
  continuum, and in the metadata the emission lines (wavelength, peak, FWHM, resolution
  element) and the target;
- ``DIR/crds``: server_config, ``jwst_9000.pmap`` -> ``jwst_miri_9000.imap`` -> one rmap
  per generated type (the installed crds's parkeys, correct checksums), references in
  ``references/jwst/miri``. Every other type the installed crds knows, every type a step
  of Detector1/Spec2/Spec3 declares and every ``pars-*`` type maps to N/A.

The source: a continuum F = 8 mJy (lambda / 8 um)^1.5 and two emission lines, [Ar II]
6.985 um (+15 mJy) and [S IV] 10.511 um (+20 mJy), each with a FWHM of one resolution
element (two pixels of the dispersion there), i.e. the spectrum as LRS resolves it; the
spatial profile is a pixel-integrated Gaussian whose width grows with wavelength. Rates are
made so that Spec2's photom (PHOTMJSR x relresponse) and extract_1d (sum x pixel area,
aperture correction) give back the truth: a row's total DN/s is F / (1e6 * PIXAR_SR * C).

Measured: what each release asks for (see docs/offline.md). rscd is N/A: its table
changed between 1.20 (``group_skip``) and 3.0 (``group_skip1`` + ``group_skip``) and each
release refuses the other's file ("Column names don't match schema"); one context cannot
serve both. emicorr runs only on request (skipped by default), refpix needs no file for
MIRI, pathloss is 1 (the synthetic flux is what passes the slit).

Prints one JSON object as the last line of stdout.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as _dt
import json
import math
import pprint
import sys
import warnings
from pathlib import Path
from typing import Any, Callable

import numpy as np
from make_program import (  # shared CRDS-mapping and datamodel helpers (same directory)
    CONTEXT,
    CONTEXT_SERIAL,
    DATE_PARKEYS,
    USEAFTER,
    _dq,
    _mapping_text,
    _quiet_save,
    _set,
    _write_context,
    crds_filekinds,
    crds_params,
    dm,
    write_rmap,
)
from make_program import pipeline_reftypes as step_reftypes  # per step; here: all of them

MIRI = {"instrument": "miri", "author": "make_spectra.py"}  # for the shared mapping writers

# ----------------------------------------------------------------------------- the instrument
INSTRUMENT = {"name": "MIRI", "detector": "MIRIMAGE", "filter": "P750L"}
EXP_TYPE = "MIR_LRS-FIXEDSLIT"
SUBARRAY = "FULL"
NY, NX = 1024, 1032              # MIRI full frame: 4 reference columns on each side
REF_COLUMNS = 4
READPATT = "FASTR1"
FRAME_TIME = 2.77504             # s, FULL, FAST readout
NGROUPS = 8
BIAS = 11000.0                   # DN
GAIN = 5.5                       # e-/DN
READNOISE = 6.0                  # DN per read
NONLIN = 1.0e-6                  # raw = true - NONLIN * true**2 (DN, bias included: MIRI
                                 # has no superbias step, linearity acts on raw DN)
SATURATION = 60000.0             # DN, raw
IPC_NEIGHBOUR = 0.01
PIXEL_SCALE = 0.11               # arcsec / pixel
PIXAR_SR = (PIXEL_SCALE / 206264.80624709636) ** 2
VA_SCALE = 1.00002

# The slit: its reference point (1-based full-frame pixel, the specwcs's IMX/IMY) and its
# place in the telescope frame (MIRIM_SLIT). The slit is long along detector x.
X_REF, Y_REF = 326.13, 300.70
APERTURE = {"name": "MIRIM_SLIT", "v2_ref": -414.5, "v3_ref": -400.7, "v3yangle": 4.83,
            "vparity": -1}
SLIT_HALF_LENGTH = 21.5          # pixels (4.7" long)
SLIT_HALF_WIDTH = 0.255          # arcsec (0.51" wide)
NOD_OFFSETS = (1.1, -1.1)        # arcsec along the slit (ideal X), PATT_NUM 1 and 2

# Dispersion: lambda(u) = L0 + L1 u + L2 u^2 with u = (Y_REF - 1) - y the rows below the
# reference point (long wavelengths at low y, as on the real detector).
L0, L1, L2 = 7.5, 0.032, 0.00006  # um, um/px, um/px^2
U_RANGE = (-100, 150)             # 4.90 um ... 13.65 um
X_TILT = 0.003                    # trace x shift per row (pixels per pixel)

# The source and the sky.
TARGET = {"targprop": "SYNTH-LRS-SOURCE", "targname": "SYNTH-LRS-SOURCE",
          "ra": 80.48, "dec": -69.5, "roll": 250.0}
CONTINUUM_JY, CONTINUUM_LAMBDA, CONTINUUM_INDEX = 0.008, 8.0, 1.5
LINES = (("[Ar II]", 6.985, 0.015), ("[S IV]", 10.511, 0.020))  # name, um, peak Jy
PSF_FWHM_ARCSEC_PER_UM = 0.036    # diffraction: FWHM ~ lambda / D
PHOTMJSR = 40.0                   # MJy/sr per DN/s at the relative response's minimum
EXTRACT_WIDTH = 8                 # pixels, the extract1d aperture

PROGRAM, OBSERVATION, VISIT = "01234", "001", "001"
SPEC_PIPELINES = ["jwst.pipeline.Detector1Pipeline", "jwst.pipeline.Spec2Pipeline",
                  "jwst.pipeline.Spec3Pipeline"]


def wavelength_of_u(u: Any) -> Any:
    return L0 + L1 * u + L2 * np.square(u)


def dispersion_of_u(u: Any) -> Any:
    """um per pixel row."""
    return L1 + 2 * L2 * u


def u_of_wavelength(lam: float) -> float:
    return (-L1 + math.sqrt(L1 * L1 + 4 * L2 * (lam - L0))) / (2 * L2)


def relresponse(lam: Any) -> Any:
    """Relative response (photom): the detector is least sensitive at the band's ends."""
    return 1.0 + 0.8 * np.square((np.asarray(lam) - 8.0) / 5.0)


def continuum(lam: Any) -> Any:
    return CONTINUUM_JY * (np.asarray(lam) / CONTINUUM_LAMBDA) ** CONTINUUM_INDEX


def resolution_element(lam: float) -> float:
    """Two pixel rows of dispersion at `lam` (um): what a line is resolved into."""
    return 2.0 * float(dispersion_of_u(u_of_wavelength(lam)))


def source_flux(lam: Any) -> Any:
    """Flux density (Jy) of the source: the continuum plus the lines as LRS resolves them."""
    lam = np.asarray(lam, float)
    flux = continuum(lam)
    for _name, center, peak in LINES:
        sigma = resolution_element(center) / (2 * math.sqrt(2 * math.log(2)))
        flux = flux + peak * np.exp(-0.5 * np.square((lam - center) / sigma))
    return flux


def sky_rate(lam: Any) -> Any:
    """Sky (zodiacal + telescope) in DN/s per pixel inside the slit: rises to the red."""
    return 3.0 + 25.0 * np.clip((np.asarray(lam) - 5.0) / 9.0, 0, None) ** 3


def psf_sigma_pixels(lam: Any) -> Any:
    return PSF_FWHM_ARCSEC_PER_UM * np.asarray(lam) / PIXEL_SCALE / (2 * math.sqrt(2 * math.log(2)))


def _erf(x: Any) -> Any:
    """erf for arrays, from the standard library (numpy has none; no scipy needed)."""
    flat = np.ravel(np.asarray(x, float))
    return np.array([math.erf(v) for v in flat]).reshape(np.shape(x))


# ----------------------------------------------------------------------------- the scene
class Detector:
    """What the detector does; one object so the data and the references agree."""

    def __init__(self, seed: int) -> None:
        self.rng = np.random.default_rng(seed)
        rng = self.rng
        yy, xx = np.mgrid[0:NY, 0:NX]
        self.refpix = (xx < REF_COLUMNS) | (xx >= NX - REF_COLUMNS)
        self.bias = (BIAS + rng.normal(0, 200, (NY, NX))).astype(np.float32)
        self.darkrate = np.abs(rng.normal(0.2, 0.05, (NY, NX))).astype(np.float32)
        # hot and dead pixels away from the slit's spectrum (x > 600): they would only
        # cost rows of the extraction there
        n_bad = 40
        hot = (rng.integers(0, NY, n_bad), rng.integers(600, NX - REF_COLUMNS, n_bad))
        self.darkrate[hot] = rng.uniform(20.0, 60.0, n_bad)
        self.darkrate[self.refpix] = 0.0
        self.mask = np.zeros((NY, NX), np.uint32)
        # REFERENCE_PIXEL only: MIRI's refpix step then uses them (with DO_NOT_USE too it
        # finds "no good reference pixels" and does nothing)
        self.mask[self.refpix] = _dq("REFERENCE_PIXEL")
        self.dead = (rng.integers(0, NY, 4), rng.integers(600, NX - REF_COLUMNS, 4))
        self.mask[self.dead] = _dq("DEAD") | _dq("DO_NOT_USE")
        self.flat = (1 + 0.02 * np.sin(2 * np.pi * xx / 257.0) * np.cos(np.pi * yy / 311.0)
                     + rng.normal(0, 0.004, (NY, NX))).astype(np.float32)
        self.flat[self.refpix] = 1.0

    def observe(self, rate: np.ndarray) -> np.ndarray:
        """Rate (DN/s, true) -> what the pixels see: flat, then inter-pixel capacitance."""
        img = rate * self.flat
        ipc = img * (1 - 4 * IPC_NEIGHBOUR)
        for axis in (0, 1):
            for shift in (-1, 1):
                ipc += IPC_NEIGHBOUR * np.roll(img, shift, axis=axis)
        ipc[self.refpix] = 0.0
        return ipc

    def ramp(self, rate: np.ndarray) -> np.ndarray:
        """Raw uint16 ramp (1, NGROUPS, NY, NX): bias + non-linear signal + dark + noise."""
        rng = self.rng
        electrons = rng.poisson(np.clip(rate, 0, None)[None] * FRAME_TIME * GAIN,
                                (NGROUPS, NY, NX))
        signal = np.cumsum(electrons, axis=0, dtype=np.float64) / GAIN
        times = FRAME_TIME * np.arange(1, NGROUPS + 1)
        raw = self.bias[None] + signal + self.darkrate[None] * times[:, None, None]
        raw -= NONLIN * raw**2
        raw += rng.normal(0, READNOISE, raw.shape)
        raw[:, self.dead[0], self.dead[1]] = BIAS
        return np.clip(np.round(raw), 0, 65535).astype(np.uint16)[None]


# ----------------------------------------------------------------------------- WCS pieces
def distortion_model() -> Any:
    """Full-frame pixel (0-based) -> V2/V3 (arcsec): the slit's ideal frame, linear, with
    the slit reference point (X_REF, Y_REF) at the aperture's V2/V3."""
    from astropy.modeling import models

    theta = np.deg2rad(APERTURE["v3yangle"])
    par = APERTURE["vparity"]
    matrix = PIXEL_SCALE * np.array([[par * np.cos(theta), np.sin(theta)],
                                     [-par * np.sin(theta), np.cos(theta)]])
    affine = models.AffineTransformation2D(
        matrix=matrix, translation=[APERTURE["v2_ref"], APERTURE["v3_ref"]])
    return models.Shift(-(X_REF - 1)) & models.Shift(-(Y_REF - 1)) | affine


def ideal_to_v2v3(x: float, y: float) -> tuple[float, float]:
    theta = np.deg2rad(APERTURE["v3yangle"])
    par = APERTURE["vparity"]
    v2 = APERTURE["v2_ref"] + par * x * np.cos(theta) + y * np.sin(theta)
    v3 = APERTURE["v3_ref"] - par * x * np.sin(theta) + y * np.cos(theta)
    return float(v2), float(v3)


def wavetable() -> np.ndarray:
    """The specwcs table: one row per pixel row of the trace, in decreasing y_center
    (increasing wavelength), positions relative to the reference point; each row's box
    spans the slit length."""
    u = np.arange(U_RANGE[0], U_RANGE[1] + 1, dtype=float)
    x_center = X_TILT * u
    y_center = -u
    lam = wavelength_of_u(u)
    rows = [(xc, yc, wl, xc - SLIT_HALF_LENGTH, yc + 0.5, xc + SLIT_HALF_LENGTH, yc + 0.5,
             xc + SLIT_HALF_LENGTH, yc - 0.5, xc - SLIT_HALF_LENGTH, yc - 0.5)
            for xc, yc, wl in zip(x_center, y_center, lam)]  # noqa: B905 (py3.6)
    names = ["x_center", "y_center", "wavelength", "x0", "y0", "x1", "y1", "x2", "y2", "x3",
             "y3"]
    return np.array(rows, dtype=[(n, "f8") for n in names])


def slit_vertices() -> dict[str, float]:
    """V2/V3 of the slit's corners (S_REGION)."""
    half_len = SLIT_HALF_LENGTH * PIXEL_SCALE
    corners = [(-half_len, -SLIT_HALF_WIDTH), (half_len, -SLIT_HALF_WIDTH),
               (half_len, SLIT_HALF_WIDTH), (-half_len, SLIT_HALF_WIDTH)]
    out = {}
    for i, (x, y) in enumerate(corners, 1):
        out[f"v2_vert{i}"], out[f"v3_vert{i}"] = ideal_to_v2v3(x, y)
    return out


def _pointing_model(ra_ref: float, dec_ref: float, roll: float) -> Any:
    model = dm.ImageModel((2, 2))
    _set(model.meta.wcsinfo, ra_ref=ra_ref, dec_ref=dec_ref, roll_ref=roll,
         v2_ref=APERTURE["v2_ref"], v3_ref=APERTURE["v3_ref"],
         v3yangle=APERTURE["v3yangle"], vparity=APERTURE["vparity"])
    return model


def pointing_for(offset: tuple[float, float]) -> tuple[float, float]:
    """(RA_REF, DEC_REF) of the aperture reference point that puts the target at ideal
    `offset` (arcsec): the release's own V2/V3 -> sky, solved by iteration."""
    from jwst.assign_wcs import pointing

    ra_t, dec_t = TARGET["ra"], TARGET["dec"]
    v2, v3 = ideal_to_v2v3(*offset)
    ra_ref, dec_ref = ra_t, dec_t
    for _ in range(6):
        model = _pointing_model(ra_ref, dec_ref, TARGET["roll"])
        ra, dec = pointing.v23tosky(model)(v2, v3)
        model.close()
        ra_ref -= ((ra - ra_t + 180) % 360 - 180)
        dec_ref -= dec - dec_t
    return float(ra_ref), float(dec_ref)


# ----------------------------------------------------------------------------- exposures
def _obs(exposure: int, start: _dt.datetime) -> dict[str, Any]:
    visit_id = f"{PROGRAM}{OBSERVATION}{VISIT}"
    name = f"jw{visit_id}_01101_{exposure:05d}_mirimage_uncal.fits"
    return {"exposure": exposure, "start": start, "filename": name, "visit_id": visit_id,
            "obs_id": f"V{visit_id}P0000000001101"}


def _exposure_meta(model: Any, obs: dict[str, Any], nod: int, offset: float,
                   pointing_ref: tuple[float, float]) -> None:
    meta = model.meta
    start = obs["start"]
    duration = NGROUPS * FRAME_TIME + FRAME_TIME
    mjd0 = (start - _dt.datetime(1858, 11, 17)).total_seconds() / 86400.0
    _set(meta, telescope="JWST", filename=obs["filename"], origin="STScI",
         data_processing_software_version="synthetic", model_type=type(model).__name__)
    _set(meta.instrument, **INSTRUMENT)
    _set(meta.observation, date=start.strftime("%Y-%m-%d"),
         time=start.strftime("%H:%M:%S.%f")[:12], program_number=PROGRAM,
         observation_number=OBSERVATION, visit_number=VISIT, visit_group="01",
         sequence_id="1", activity_id="01", exposure_number=str(obs["exposure"]),
         obs_id=obs["obs_id"], visit_id=obs["visit_id"])
    with contextlib.suppress(Exception):
        meta.observation.date_beg = start.strftime("%Y-%m-%dT%H:%M:%S.%f")[:23]
    with contextlib.suppress(Exception):
        meta.observation.bkgdtarg = False
    _set(meta.exposure, type=EXP_TYPE, readpatt=READPATT, nints=1, ngroups=NGROUPS,
         nframes=1, groupgap=0, nresets_at_start=0, nresets_between_ints=1,
         frame_time=FRAME_TIME, group_time=FRAME_TIME, sample_time=10,
         integration_time=NGROUPS * FRAME_TIME, exposure_time=NGROUPS * FRAME_TIME,
         effective_exposure_time=(NGROUPS - 1) * FRAME_TIME, duration=duration,
         elapsed_exposure_time=duration, measurement_time=(NGROUPS - 1) * FRAME_TIME,
         start_time=mjd0, mid_time=mjd0 + duration / 2 / 86400,
         end_time=mjd0 + duration / 86400, integration_start=1, integration_end=1,
         zero_frame=False, data_problem=False, noutputs=1, nexposures=1, frame_divisor=1)
    _set(meta.subarray, name=SUBARRAY, xstart=1, ystart=1, xsize=NX, ysize=NY, fastaxis=1,
         slowaxis=2)
    _set(meta.visit, tsovisit=False, type="PRIME_TARGETED_FIXED", engineering_quality="OK")
    _set(meta.target, catalog_name=TARGET["targname"], proposer_name=TARGET["targprop"],
         ra=TARGET["ra"], dec=TARGET["dec"], type="FIXED")
    with contextlib.suppress(Exception):
        meta.target.source_type_apt = "POINT"
    _set(meta.dither, primary_type="ALONG-SLIT-NOD", position_number=nod, total_points=2,
         x_offset=offset, y_offset=0.0)
    ra_ref, dec_ref = pointing_ref
    _set(meta.wcsinfo, ra_ref=ra_ref, dec_ref=dec_ref, roll_ref=TARGET["roll"],
         v2_ref=APERTURE["v2_ref"], v3_ref=APERTURE["v3_ref"],
         v3yangle=APERTURE["v3yangle"], vparity=APERTURE["vparity"],
         siaf_xref_sci=X_REF, siaf_yref_sci=Y_REF, velosys=0.0)
    with contextlib.suppress(Exception):
        meta.aperture.name = APERTURE["name"]
    with contextlib.suppress(Exception):
        meta.wcsinfo.aperture_name = APERTURE["name"]
    from jwst.assign_wcs import pointing

    model_v1 = _pointing_model(ra_ref, dec_ref, TARGET["roll"])
    ra_v1, dec_v1 = pointing.v23tosky(model_v1)(0.0, 0.0)
    model_v1.close()
    _set(meta.pointing, ra_v1=float(ra_v1), dec_v1=float(dec_v1), pa_v3=TARGET["roll"])
    _set(meta.velocity_aberration, scale_factor=VA_SCALE, va_ra_ref=ra_ref,
         va_dec_ref=dec_ref)
    with contextlib.suppress(Exception):
        meta.photometry.pixelarea_steradians = PIXAR_SR
        meta.photometry.pixelarea_arcsecsq = PIXEL_SCALE**2


def lrs_wcs(model: Any, refs: dict[str, str]) -> Any:
    """The release's own LRS fixed-slit WCS for `model`, from our reference files."""
    from gwcs.wcs import WCS
    from jwst.assign_wcs import miri

    return WCS(miri.lrs(model, refs))


def source_rate(wcs: Any) -> tuple[np.ndarray, dict[str, Any]]:
    """DN/s (true, before flat and IPC) of the source and the sky in one nod, by the WCS:
    each row's wavelength, the target's column there, a pixel-integrated Gaussian across."""
    rows = np.arange(NY, dtype=float)
    x_mid = np.full(NY, X_REF - 1)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        lam = np.asarray(wcs(x_mid, rows)[2], float)
    good = np.isfinite(lam)
    y_rows = rows[good].astype(int)
    lam = lam[good]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        x_trace = np.asarray(wcs.backward_transform(
            np.full(lam.shape, TARGET["ra"]), np.full(lam.shape, TARGET["dec"]), lam)[0], float)
    rate = np.zeros((NY, NX))
    xx = np.arange(NX, dtype=float)
    conversion = 1e6 * PIXAR_SR * PHOTMJSR * relresponse(lam)  # Jy per DN/s (a row's sum)
    total = source_flux(lam) / conversion
    sigma = psf_sigma_pixels(lam)
    slit_center = (X_REF - 1) + X_TILT * ((Y_REF - 1) - y_rows)
    for k, y in enumerate(y_rows):
        s = sigma[k] * math.sqrt(2)
        edges = _erf((np.append(xx - 0.5, xx[-1] + 0.5) - x_trace[k]) / s)
        rate[y] += total[k] * 0.5 * np.diff(edges)
        inside = np.abs(xx - slit_center[k]) <= SLIT_HALF_LENGTH
        rate[y, inside] += sky_rate(lam[k])
    info = {"rows": [int(y_rows.min()), int(y_rows.max())],
            "x_trace": [float(x_trace.min()), float(x_trace.max())],
            "wavelength": [float(lam.min()), float(lam.max())]}
    return rate, info


# ----------------------------------------------------------------------------- references
def _ref_meta(model: Any, reftype: str, description: str) -> None:
    meta = model.meta
    _set(meta, reftype=reftype.upper(), description=description, telescope="JWST",
         author="jwenv make_spectra.py (synthetic)", pedigree="DUMMY", useafter=USEAFTER)
    _set(meta.instrument, **INSTRUMENT)
    for node, values in (("exposure", {"type": EXP_TYPE, "readpatt": READPATT,
                                       "nframes": 1, "groupgap": 0}),
                         ("subarray", {"name": SUBARRAY, "xstart": 1, "ystart": 1,
                                       "xsize": NX, "ysize": NY, "fastaxis": 1,
                                       "slowaxis": 2})):
        for key, value in values.items():
            with contextlib.suppress(Exception):
                setattr(getattr(meta, node), key, value)


def ref_mask(d: Detector) -> Any:
    return dm.MaskModel(dq=d.mask.copy())


def ref_saturation(d: Detector) -> Any:
    return dm.SaturationModel(data=np.full((NY, NX), SATURATION, np.float32),
                              dq=np.zeros((NY, NX), np.uint32))


def ref_linearity(d: Detector) -> Any:
    """Inverse of the injected quadratic to third order: true ~ m + a m^2 + 2 a^2 m^3
    (on raw DN: the bias is part of what MIRI's linearity corrects)."""
    coeffs = np.zeros((4, NY, NX), np.float32)
    coeffs[1] = 1.0
    coeffs[2] = NONLIN
    coeffs[3] = 2 * NONLIN**2
    return dm.LinearityModel(coeffs=coeffs, dq=np.zeros((NY, NX), np.uint32))


def ref_dark(d: Detector) -> Any:
    """Cumulative dark per group (MIRI darks are 4-D: integration, group, y, x)."""
    times = FRAME_TIME * np.arange(1, NGROUPS + 1)
    data = (d.darkrate[None, None] * times[None, :, None, None]).astype(np.float32)
    model = dm.DarkMIRIModel(data=data)
    _set(model.meta.exposure, ngroups=NGROUPS, nframes=1, groupgap=0)
    with contextlib.suppress(Exception):
        model.meta.exposure.average_dark_current = float(np.median(d.darkrate) * GAIN)
    return model


def ref_reset(d: Detector) -> Any:
    """No reset anomaly: zero for the first group (the step corrects as many as given)."""
    model = dm.ResetModel(data=np.zeros((1, 1, NY, NX), np.float32),
                          dq=np.zeros((NY, NX), np.uint32))
    _set(model.meta.exposure, ngroups=1, nints=1)
    return model


def ref_readnoise(d: Detector) -> Any:
    """CDS noise (of a difference of two reads), the reference files' convention: the jump
    step takes it as a difference's noise, ramp_fit divides it by sqrt(2)."""
    return dm.ReadnoiseModel(data=np.full((NY, NX), READNOISE * math.sqrt(2), np.float32))


def ref_gain(d: Detector) -> Any:
    return dm.GainModel(data=np.full((NY, NX), GAIN, np.float32))


def ref_ipc(d: Detector) -> Any:
    kernel = np.zeros((3, 3), np.float32)
    kernel[1, 1] = 1 - 4 * IPC_NEIGHBOUR
    kernel[0, 1] = kernel[2, 1] = kernel[1, 0] = kernel[1, 2] = IPC_NEIGHBOUR
    return dm.IPCModel(data=kernel)


def ref_distortion(d: Detector) -> Any:
    import astropy.units as u

    model = dm.DistortionModel(model=distortion_model())
    model.meta.input_units = u.pix
    model.meta.output_units = u.arcsec
    with contextlib.suppress(Exception):
        model.meta.exposure.p_exptype = "MIR_IMAGE|MIR_LRS-FIXEDSLIT|MIR_LRS-SLITLESS|"
    return model


def ref_specwcs(d: Detector) -> Any:
    model = dm.MiriLRSSpecwcsModel(wavetable=wavetable(), x_ref=X_REF, y_ref=Y_REF,
                                   x_ref_slitless=X_REF, y_ref_slitless=Y_REF,
                                   **slit_vertices())
    return model


def ref_flat(d: Detector) -> Any:
    return dm.FlatModel(data=d.flat.copy(), err=np.full((NY, NX), 0.002, np.float32),
                        dq=np.zeros((NY, NX), np.uint32))


def ref_pathloss(d: Detector) -> Any:
    """1 everywhere in the slit (the synthetic flux is what passes it); wavelengths in
    decreasing order, as the real files (the step flips them); positions in pixels from
    the slit reference point."""
    lam = np.linspace(14.5, 4.5, 41).astype(np.float32)
    ny, nx = 9, 51
    table = np.zeros(len(lam), dtype=[("wavelength", "f4"), ("pathloss", "f4", (ny, nx)),
                                      ("pathloss_err", "f4", (ny, nx))])
    table["wavelength"] = lam
    table["pathloss"] = 1.0
    model = dm.MirLrsPathlossModel(pathloss_table=table)
    _set(model.meta.wcsinfo, wcsaxes=2, crpix1=1.0, crpix2=1.0, crval1=-(nx // 2),
         crval2=-(ny // 2), cdelt1=1.0, cdelt2=1.0, ctype1="PIXEL", ctype2="PIXEL",
         cunit1="pixel", cunit2="pixel")
    return model


def ref_photom(d: Detector) -> Any:
    n = 200
    lam = np.linspace(4.5, 14.5, n).astype(np.float32)
    table = np.zeros(1, dtype=[("filter", "S12"), ("subarray", "S15"), ("photmjsr", "f4"),
                               ("uncertainty", "f4"), ("nelem", "i2"),
                               ("wavelength", "f4", (n,)), ("relresponse", "f4", (n,)),
                               ("reluncertainty", "f4", (n,))])
    table[0] = (INSTRUMENT["filter"], SUBARRAY, PHOTMJSR, 0.01 * PHOTMJSR, n, lam,
                relresponse(lam).astype(np.float32), np.full(n, 0.01, np.float32))
    model = dm.MirLrsPhotomModel(phot_table=table)
    model.meta.photometry.pixelarea_steradians = PIXAR_SR
    model.meta.photometry.pixelarea_arcsecsq = PIXEL_SCALE**2
    return model


def aperture_fraction(width: Any, lam: Any) -> Any:
    """Fraction of the (pixel-integrated Gaussian) profile inside a box of `width` px."""
    sigma = psf_sigma_pixels(lam)
    return _erf(np.asarray(width, float) / (2 * math.sqrt(2) * sigma))


def ref_apcorr(d: Detector) -> Any:
    lam = np.linspace(4.5, 14.5, 41).astype(np.float32)
    sizes = np.arange(1, 21, dtype=np.uint8)
    grid_w, grid_l = np.meshgrid(sizes.astype(float), lam)  # (n_wavelength, n_size)
    apcorr = (1.0 / aperture_fraction(grid_w, grid_l)).astype(np.float32)
    table = np.zeros(1, dtype=[("subarray", "S15"), ("wavelength", "f4", (len(lam),)),
                               ("nelem_wl", "i2"), ("size", "u1", (len(sizes),)),
                               ("nelem_size", "i2"),
                               ("apcorr", "f4", apcorr.shape),
                               ("apcorr_err", "f4", apcorr.shape)])
    table[0] = (SUBARRAY, lam, len(lam), sizes, len(sizes), apcorr, np.zeros_like(apcorr))
    model = dm.MirLrsApcorrModel(apcorr_table=table)
    model.meta.sizeunit = "pixels"
    with contextlib.suppress(Exception):
        model.sizeunit = "pixels"
    return model


def extract1d_json() -> dict[str, Any]:
    """The extract1d reference (JSON, as CRDS has them for LRS): a box EXTRACT_WIDTH wide,
    centred on the source (use_source_posn), dispersion along y."""
    return {"reftype": "EXTRACT1D", "instrument": "MIRI", "telescope": "JWST",
            "exp_type": EXP_TYPE, "pedigree": "DUMMY", "useafter": USEAFTER,
            "author": "jwenv make_spectra.py (synthetic)",
            "description": f"Box extraction {EXTRACT_WIDTH} px wide on the source",
            "apertures": [{"id": "ANY", "region_type": "target", "dispaxis": 2,
                           "extract_width": EXTRACT_WIDTH, "use_source_posn": True,
                           "bkg_order": 0}]}


BUILDERS: dict[str, tuple[Callable[[Detector], Any], str]] = {
    "mask": (ref_mask, "Reference columns and a few dead pixels"),
    "saturation": (ref_saturation, "Flat 60000 DN saturation"),
    "ipc": (ref_ipc, "3x3 IPC kernel matching the injected coupling"),
    "reset": (ref_reset, "No reset anomaly"),
    "linearity": (ref_linearity, "Inverse of the injected quadratic non-linearity"),
    "dark": (ref_dark, "Dark current with hot pixels, FASTR1 groups"),
    "readnoise": (ref_readnoise, "Uniform read noise"),
    "gain": (ref_gain, "Uniform gain"),
    "distortion": (ref_distortion, "Linear pixel to V2/V3 model (no distortion)"),
    "specwcs": (ref_specwcs, "Quadratic LRS dispersion, slightly tilted trace"),
    "flat": (ref_flat, "Pixel response injected into the data"),
    "pathloss": (ref_pathloss, "No slit loss"),
    "photom": (ref_photom, "Round-number conversion with a smooth relative response"),
    "apcorr": (ref_apcorr, "Aperture corrections of the injected Gaussian profile"),
}
JSON_REFS = {"extract1d": extract1d_json}


# ----------------------------------------------------------------------------- CRDS cache
def pipeline_reftypes(names: list[str]) -> set[str]:
    """Every reference type a step of these pipelines declares, and their `pars-*` types."""
    steps, pars = step_reftypes(names)
    return pars.union(*steps.values())


def write_crds_cache(crds_path: Path, detector: Detector,
                     params: list[dict[str, Any]]) -> dict[str, Any]:
    refdir = crds_path / "references" / "jwst" / "miri"
    mapdir = crds_path / "mappings" / "jwst"
    cfgdir = crds_path / "config" / "jwst"
    for d in (refdir, mapdir, cfgdir):
        d.mkdir(parents=True, exist_ok=True)
    specs = crds_filekinds("miri")
    selections: dict[str, str] = {}
    for kind, (build, description) in BUILDERS.items():
        spec = specs.get(kind, {"parkey": (("META.INSTRUMENT.DETECTOR",), DATE_PARKEYS)})
        ext = ".asdf" if kind == "distortion" else ".fits"  # a tree-only model is ASDF
        filename = f"jwst_miri_{kind}_{CONTEXT_SERIAL}{ext}"
        model = build(detector)
        _ref_meta(model, kind, description)
        _quiet_save(model, refdir / filename)
        selections[kind] = write_rmap(mapdir, kind, dict(spec, file_ext=ext),
                                      [(p, filename) for p in params], **MIRI)
    for kind, build_json in JSON_REFS.items():
        spec = specs.get(kind, {"parkey": (("META.EXPOSURE.TYPE",),)})
        filename = f"jwst_miri_{kind}_{CONTEXT_SERIAL}.json"
        (refdir / filename).write_text(json.dumps(build_json(), indent=2) + "\n")
        selections[kind] = write_rmap(mapdir, kind, dict(spec, file_ext=".json"),
                                      [(p, filename) for p in params], **MIRI)
    generated = sorted(selections)
    for kind in sorted((set(specs) | pipeline_reftypes(SPEC_PIPELINES)) - set(selections)):
        selections[kind] = "N/A"
    mappings = _write_context(mapdir, CONTEXT_SERIAL, selections, **MIRI)
    now = _dt.datetime.now(_dt.timezone.utc).strftime("%Y-%m-%d %H:%M:%S")
    server_config = {
        "observatory": "jwst", "operational_context": CONTEXT, "edit_context": CONTEXT,
        "versions_context": CONTEXT, "jwst_build_contexts": {},
        "mappings": sorted(set(mappings)), "bad_files": "", "bad_files_list": [],
        "force_remote_mode": False, "effective_mode": "local", "last_synced": now,
        "crds_version": {"str": "synthetic"},
        "reference_url": "file://" + str(crds_path / "references"),
        "mapping_url": "file://" + str(crds_path / "mappings"), "download_metadata": "",
    }
    (cfgdir / "server_config").write_text(pprint.pformat(server_config) + "\n")
    return {"reference_types": generated,
            "na_types": sorted(k for k, v in selections.items() if v == "N/A"),
            "contexts": [CONTEXT]}


def extend_mappings(out: Path) -> dict[str, Any]:
    """Map to N/A the MIRI types *this* release knows that the cache's imap lacks (the
    program was made by an older release; CRDS refuses a type its context does not
    name)."""
    import ast

    imap = out / "crds" / "mappings" / "jwst" / f"jwst_miri_{CONTEXT_SERIAL}.imap"
    text = imap.read_text()
    header = ast.literal_eval(text.split("header = ", 1)[1].split("\n\nselector = ", 1)[0])
    selections = ast.literal_eval(text.split("selector = ", 1)[1])
    known = set(crds_filekinds("miri")) | pipeline_reftypes(SPEC_PIPELINES)
    new = sorted(known - set(selections))
    if new:
        selections.update({kind: "N/A" for kind in new})
        header.pop("sha1sum", None)
        body = "{\n" + "".join(f"    {k!r} : {v!r},\n" for k, v in sorted(selections.items()))
        imap.write_text(_mapping_text(header, body + "}"))
    return {"context": CONTEXT, "contexts": [CONTEXT], "crds_path": str(out / "crds"),
            "added_na_types": new}


# ----------------------------------------------------------------------------- the program
def write_truth(path: Path, nods: list[dict[str, Any]]) -> None:
    from astropy.table import Table

    lam = np.round(np.arange(wavelength_of_u(U_RANGE[0]), wavelength_of_u(U_RANGE[1]),
                             0.002), 4)
    table = Table({"wavelength": lam, "flux": source_flux(lam), "continuum": continuum(lam)})
    table["wavelength"].unit = "um"
    table["flux"].unit = "Jy"
    table["continuum"].unit = "Jy"
    table.meta.update({
        "target": TARGET, "exp_type": EXP_TYPE, "filter": INSTRUMENT["filter"],
        "lines": [{"name": name, "wavelength": center, "peak_jy": peak,
                   "fwhm_um": resolution_element(center),
                   "resolution_um": resolution_element(center)}
                  for name, center, peak in LINES],
        "resolution": "one resolution element = two pixel rows of dispersion",
        "continuum": f"{CONTINUUM_JY} Jy * (lambda / {CONTINUUM_LAMBDA} um)"
                     f"^{CONTINUUM_INDEX}",
        "extract_width_px": EXTRACT_WIDTH, "pixel_scale_arcsec": PIXEL_SCALE,
        "pixar_sr": PIXAR_SR, "photmjsr": PHOTMJSR,
        "nods": nods})
    table.write(path, format="ascii.ecsv", overwrite=True)


def make_program(out: Path, seed: int) -> dict[str, Any]:
    data_dir = out / "data"
    data_dir.mkdir(parents=True, exist_ok=True)
    detector = Detector(seed)
    start = _dt.datetime(2023, 6, 1, 9, 0, 0)
    model_cls = getattr(dm, "Level1bModel", None) or dm.RampModel

    # Headers first: the references are selected by them, and the trace is placed with the
    # WCS that the references make.
    exposures = []
    for nod, offset in enumerate(NOD_OFFSETS, 1):
        obs = _obs(nod, start + (nod - 1) * _dt.timedelta(minutes=2))
        model = model_cls(data=np.zeros((1, NGROUPS, NY, NX), np.uint16))
        ref_point = pointing_for((offset, 0.0))
        _exposure_meta(model, obs, nod, offset, ref_point)
        exposures.append((obs, nod, offset, ref_point, model))
    params = []
    for obs, _nod, _offset, _ref, model in exposures:
        path = data_dir / obs["filename"]
        _quiet_save(model, path)  # headers only, for the CRDS parameters
        params.append(crds_params(path))
    cache = write_crds_cache(out / "crds", detector, params)
    refdir = out / "crds" / "references" / "jwst" / "miri"
    refs = {"distortion": str(refdir / f"jwst_miri_distortion_{CONTEXT_SERIAL}.asdf"),
            "specwcs": str(refdir / f"jwst_miri_specwcs_{CONTEXT_SERIAL}.fits")}

    uncal, nods = [], []
    for obs, nod, offset, ref_point, _model in exposures:
        header_model = model_cls(data=np.zeros((1, NGROUPS, NY, NX), np.uint16))
        _exposure_meta(header_model, obs, nod, offset, ref_point)
        wcs = lrs_wcs(header_model, refs)
        rate, trace = source_rate(wcs)
        model = model_cls(data=detector.ramp(detector.observe(rate)))
        _exposure_meta(model, obs, nod, offset, ref_point)
        path = data_dir / obs["filename"]
        _quiet_save(model, path)
        header_model.close()
        uncal.append(str(path))
        nods.append({"file": obs["filename"], "patt_num": nod, "x_offset_arcsec": offset,
                     "ra_ref": ref_point[0], "dec_ref": ref_point[1], **trace})
    truth = out / "truth_spectrum.ecsv"
    write_truth(truth, nods)
    return {"context": CONTEXT, "crds_path": str(out / "crds"), "program": PROGRAM,
            "mode": EXP_TYPE, "uncal": uncal, "truth": str(truth), "nods": nods,
            "target": TARGET, "lines": [{"name": n, "wavelength": w, "peak_jy": p,
                                         "resolution_um": resolution_element(w)}
                                        for n, w, p in LINES],
            **cache, "size": [NY, NX], "subarray": SUBARRAY, "ngroups": NGROUPS,
            "seed": seed}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", required=True, type=Path, help="output directory")
    parser.add_argument("--seed", type=int, default=0, help="random seed (deterministic)")
    parser.add_argument("--extend", action="store_true",
                        help="only add N/A mappings for reference types this release knows "
                             "to a cache made earlier (by an older release) in --out")
    args = parser.parse_args(argv)
    out = args.out.resolve()
    result = extend_mappings(out) if args.extend else make_program(out, args.seed)
    sys.stdout.write(json.dumps(result) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
