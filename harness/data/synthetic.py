"""Deterministic synthetic driver-state images: the harness's built-in dataset.

Each image is a frontal in-cabin crop of a cartoon driver face, RGB uint8,
``size x size`` (32..160 works), in one of the five ``CLASSES``. Nuisance
factors (background gradient and clutter, face position/scale/tilt, skin tone,
hair or cap, glasses, side lighting, contrast, colour cast, grey IR-like frames,
pixel noise) keep a linear model on raw pixels far from solving the task,
while a small CNN learns it within a few epochs.

Determinism rules (a given seed must give byte-identical images on any machine):

* Every sample has its own generator, seeded from (base seed, split, index)
  through ``numpy.random.SeedSequence`` (``sample_rng``), so any sample can be
  regenerated alone and different splits never share a random stream.
* Randomness is drawn only with ``rng.integers``, ``rng.random`` and
  ``rng.uniform``, which are bit-exact across platforms (``rng.normal`` and
  friends go through libm and are not).
* Pixel arithmetic uses only + - * /, comparisons, ``np.clip``, ``np.minimum``,
  ``np.abs`` and ``np.sqrt``, all IEEE-exact; no reductions. No
  transcendental function is used anywhere, not even on scalars: angles are
  drawn as half-angle tangents ``t`` and turned into ``(cos, sin)`` with the
  rational formula ``((1 - t^2) / (1 + t^2), 2t / (1 + t^2))``.
* The last step rounds with ``floor(clip(x, 0, 1) * 255 + 0.5)``.

Changing any drawing code changes the images: update the golden hash in
``tests/test_synthetic.py`` deliberately when that is intended.

A ``Look`` pins nuisance factors the scenario matrix varies (head turn vs eyes-only gaze, skin, eyelid
aperture, eyewear, mask, hat, lighting). Every random draw is still made and then overridden, so a
sample without a look is byte-identical to one rendered before looks existed.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

CLASSES: tuple[str, ...] = ("attentive", "eyes_closed", "yawning", "looking_away", "phone_use")
DEFAULT_SEED: int = 20261126
# A split's code is its position here: append new splits, never reorder.
SPLITS: tuple[str, ...] = ("train", "calibration", "evaluation")

ATTENTIVE, EYES_CLOSED, YAWNING, LOOKING_AWAY, PHONE_USE = range(len(CLASSES))

Rot = tuple[float, float]  # (cos, sin) of an angle
EYEWEAR: tuple[str, ...] = ("none", "clear", "sunglasses")


@dataclass(frozen=True)
class Look:
    """Factors a scenario pins; None leaves the factor random as in the dataset."""

    yaw: float | None = None  # head turn as a signed half-angle tangent (owl); 0.42..0.62 is looking away
    gaze: float | None = None  # iris offset in eye half-widths x 3 (lizard: +-2 looks away with the head still)
    skin: float | None = None  # 0 lightest .. 1 darkest (Fitzpatrick 1..6 as (type - 1) / 5)
    openness: float | None = None  # eyelid aperture relative to the typical eye (10 mm -> 1.0)
    eyewear: str | None = None  # one of EYEWEAR
    mask: bool = False  # a face mask over nose and mouth
    hat: bool | None = None  # True: a cap with a brim; False: none
    exposure: float = 1.0  # scene brightness gain (night 0.55 .. direct sun 1.35)
    infrared: bool = False  # grey frames, as a near-infrared cabin camera gives at night
_INF = float("inf")
_UPRIGHT: Rot = (1.0, 0.0)
_SKIN_LIGHT = np.array([0.96, 0.80, 0.69])
_SKIN_DARK = np.array([0.40, 0.26, 0.18])
_HAIR = np.array([[0.06, 0.05, 0.05], [0.30, 0.19, 0.11], [0.72, 0.58, 0.34], [0.60, 0.60, 0.60]])
_IRIS = np.array([[0.30, 0.17, 0.08], [0.22, 0.36, 0.52], [0.10, 0.08, 0.07], [0.28, 0.35, 0.20]])
_EYE_ANGLE: Rot = (0.96 / 1.04, 0.4 / 1.04)  # eyes sit ~23 degrees either side of the nose
_HEAD_DEPTH = 0.8  # radius of the circle the features turn on, in face radii
_MIN_FORE = 0.4  # an eye foreshortened more than this is hidden by the nose


def _rot(t: float) -> Rot:
    """(cos, sin) of the angle whose half-angle tangent is ``t`` (rational, so bit-exact)."""
    d = 1.0 + t * t
    return (1.0 - t * t) / d, 2.0 * t / d


def _compose(a: Rot, b: Rot) -> Rot:
    """Rotation by angle(a) + angle(b)."""
    return a[0] * b[0] - a[1] * b[1], a[1] * b[0] + a[0] * b[1]


def _muted(rng: np.random.Generator, lo: float, hi: float) -> np.ndarray:
    """A random colour: grey level in [lo, hi] with a +-20 % tint per channel."""
    return rng.uniform(lo, hi) * rng.uniform(0.8, 1.2, 3)


def _frame(img: np.ndarray, cx: float, cy: float, reach: float, rot: Rot):
    """Window of ``img`` within ``reach`` px of (cx, cy), with its pixel-centre coordinates
    (u, v) in a frame rotated by ``rot``; None when off-image. Windows keep small shapes cheap."""
    size = img.shape[0]
    x0, x1 = max(math.floor(cx - reach), 0), min(math.ceil(cx + reach) + 1, size)
    y0, y1 = max(math.floor(cy - reach), 0), min(math.ceil(cy + reach) + 1, size)
    if x0 >= x1 or y0 >= y1:
        return None
    dx = (np.arange(x0, x1) + (0.5 - cx))[None, :]
    dy = (np.arange(y0, y1) + (0.5 - cy))[:, None]
    c, s = rot
    return img[y0:y1, x0:x1], dx * c + dy * s, dy * c - dx * s


def _paint(window: np.ndarray, alpha: np.ndarray, colour) -> None:
    """Alpha-blend a flat colour into ``window`` in place."""
    a = alpha[..., None]
    window += a * (np.asarray(colour) - window)


def _draw_ellipse(img, cx, cy, rx, ry, rot, colour, line=0.0, keep_v=None, opacity=1.0) -> None:
    """Filled ellipse, or its outline ``line`` px thick; only where keep_v[0] < v < keep_v[1]
    in the ellipse's own frame (half ellipses give arcs, fringes, teeth). Anti-aliased."""
    frame = _frame(img, cx, cy, max(rx, ry) + line + 1.5, rot)
    if frame is None:
        return
    win, u, v = frame
    rx2, ry2 = rx * rx, ry * ry
    q = u * u / rx2 + v * v / ry2
    # First-order signed distance to the boundary in px (positive inside): (1 - q) / |grad q|.
    sd = (1.0 - q) / (2.0 * np.sqrt(u * u / (rx2 * rx2) + v * v / (ry2 * ry2)) + 1e-12)
    if line:
        alpha = np.clip(0.5 * line + 0.5 - np.abs(sd), 0.0, 1.0)
    else:
        alpha = np.clip(sd + 0.5, 0.0, 1.0)
    if keep_v is not None:
        alpha = alpha * np.clip(v - keep_v[0] + 0.5, 0.0, 1.0) * np.clip(keep_v[1] - v + 0.5, 0.0, 1.0)
    _paint(win, alpha * opacity if opacity != 1.0 else alpha, colour)


def _draw_rect(img, cx, cy, w, h, rot, colour) -> None:
    """Filled w x h rectangle centred on (cx, cy), rotated by ``rot``."""
    frame = _frame(img, cx, cy, 0.5 * (w + h) + 1.5, rot)
    if frame is None:
        return
    win, u, v = frame
    sd = np.minimum(0.5 * w - np.abs(u), 0.5 * h - np.abs(v))
    _paint(win, np.clip(sd + 0.5, 0.0, 1.0), colour)


@dataclass
class _Head:
    cx: float
    cy: float
    r: float  # vertical face radius, px; feature sizes are fractions of it
    rot: Rot  # in-plane tilt
    yaw: Rot  # left/right turn

    def at(self, fx: float, fy: float) -> tuple[float, float]:
        """Image position of face-local point (fx, fy), in face radii (y down)."""
        c, s = self.rot
        return self.cx + self.r * (fx * c - fy * s), self.cy + self.r * (fx * s + fy * c)

    def turned(self, angle: Rot) -> tuple[float, float]:
        """(face-local x, foreshortening) of a feature ``angle`` round the head from the nose."""
        c, s = _compose(angle, self.yaw)
        return _HEAD_DEPTH * s, c


def _draw_eye(img, head, fx, fore, fy, closed, openness, gaze, iris, skin, lash) -> None:
    x, y = head.at(fx, fy)
    r, rx, ry = head.r, 0.22 * head.r * fore, 0.11 * head.r
    line = max(0.9, 0.06 * r)
    if closed:
        # Shaded lid plus the lash line, a downward arc: no white shows.
        _draw_ellipse(img, x, y, rx, 0.7 * ry, head.rot, skin * 0.85)
        _draw_ellipse(img, x, y - 0.3 * ry, rx, 0.6 * ry, head.rot, lash, line=line, keep_v=(0.0, _INF))
        return
    ry *= openness
    _draw_ellipse(img, x, y, rx, ry, head.rot, (0.97, 0.96, 0.94))
    ix, iy = head.at(fx + gaze * 0.09 * fore, fy)
    ir = 0.085 * r
    _draw_ellipse(img, ix, iy, min(ir, 0.8 * rx), min(ir, ry), head.rot, iris)
    _draw_ellipse(img, ix, iy, min(0.45 * ir, 0.4 * rx), min(0.45 * ir, ry), head.rot, (0.02, 0.02, 0.02))
    _draw_ellipse(img, x, y, rx, ry, head.rot, lash, line=line, keep_v=(-_INF, 0.0))  # upper lid


def _draw_mouth(img, head, yawning, skin, rng) -> None:
    fx, fore = head.turned(_UPRIGHT)
    fx *= 0.95
    lip = skin * np.array([0.78, 0.52, 0.52])
    if yawning:  # wide open: a dark cavity taller than wide inside the lips
        x, y = head.at(fx, 0.6)
        rx, ry = rng.uniform(0.16, 0.21) * head.r * fore, rng.uniform(0.28, 0.34) * head.r
        _draw_ellipse(img, x, y, rx + 0.04 * head.r, ry + 0.04 * head.r, head.rot, lip)
        _draw_ellipse(img, x, y, rx, ry, head.rot, rng.uniform(0.03, 0.15) * np.array([1.0, 0.35, 0.35]))
        if rng.random() < 0.5:  # upper teeth
            _draw_ellipse(img, x, y, rx, ry, head.rot, (0.9, 0.88, 0.82), keep_v=(-_INF, -0.7 * ry))
        return
    x, y = head.at(fx, rng.uniform(0.48, 0.56))
    rx = rng.uniform(0.16, 0.23) * head.r * fore
    _draw_ellipse(img, x, y, rx, rng.uniform(0.03, 0.055) * head.r, head.rot, lip)
    smile = rng.uniform(0.0, 0.06) * head.r  # 0 gives a flat line
    _draw_ellipse(img, x, y - smile, rx, smile + 0.01 * head.r, head.rot, lip * 0.45,
                  line=max(0.6, 0.025 * head.r), keep_v=(0.0, _INF))


def _draw_phone(img, head, face_rx, skin, rng) -> None:
    """Phone at the ear, back to the camera, gripped by a hand on a forearm from below."""
    # Off-centre faces hold it on the inner side so that it stays in the crop.
    offset_x = head.cx / img.shape[1] - 0.5
    side = -math.copysign(1.0, offset_x) if abs(offset_x) > 0.08 else (1.0 if rng.random() < 0.5 else -1.0)
    rot = _compose(head.rot, _rot(side * rng.uniform(0.0, 0.2)))  # top leans outwards
    c, s = rot
    r = head.r
    px, py = head.at(side * face_rx * rng.uniform(0.85, 1.05), rng.uniform(0.0, 0.25))
    length, width = rng.uniform(1.1, 1.3) * r, rng.uniform(0.5, 0.6) * r

    def along(u: float, v: float) -> tuple[float, float]:
        return px + u * c - v * s, py + u * s + v * c

    hx, hy = along(side * 0.12 * width, 0.3 * length)
    _draw_rect(img, hx + side * 0.3 * r, hy + r, 0.45 * r, 2.0 * r, _rot(-side * 0.15), rng.uniform(0.1, 0.8, 3))
    _draw_rect(img, px, py, width, length, rot, rng.uniform(0.04, 0.22) * np.array([1.0, 1.0, 1.1]))
    _draw_rect(img, *along(side * 0.36 * width, 0.0), 0.28 * width, 0.92 * length, rot,
               rng.uniform(0.8, 1.0) * np.array([0.85, 0.95, 1.0]))  # lit screen edge
    _draw_ellipse(img, hx, hy, 0.3 * r, 0.36 * r, rot, skin * 0.95)
    for v in (-0.3, -0.12, 0.06):  # fingers curling round the edge nearest the face
        _draw_ellipse(img, *along(-side * 0.45 * width, v * length), 0.13 * r, 0.06 * r, rot, skin * 0.85)


def _draw_background(img, rng) -> None:
    """Linear gradient in a random direction between two related muted colours."""
    size = img.shape[0]
    col_a = np.clip(rng.uniform(0.2, 0.8) * rng.uniform(0.92, 1.08, 3), 0.0, 1.0)
    col_b = np.clip(col_a * rng.uniform(0.7, 1.3) * rng.uniform(0.95, 1.05, 3), 0.0, 1.0)
    c, s = _rot(rng.uniform(-1.0, 1.0))  # +-90 degrees, and a coin flip for the other half
    if rng.random() < 0.5:
        c, s = -c, -s
    axis = np.arange(size) + (0.5 - 0.5 * size)
    ramp = np.clip((axis[None, :] * c + axis[:, None] * s) / size + 0.5, 0.0, 1.0)
    img[:] = col_a + ramp[..., None] * (col_b - col_a)


def _draw_glasses(img, head, eyes, eye_y, rng, dark: bool = False) -> None:
    """Thin rings round the visible eyes, plus a bridge when both are visible; sunglasses fill the lenses."""
    colour = rng.uniform(0.0, 0.35, 3)
    line = max(0.7, 0.04 * head.r)
    for ex, fore in eyes:
        if dark:
            _draw_ellipse(img, *head.at(ex, eye_y), 0.27 * head.r * fore, 0.18 * head.r, head.rot, (0.05, 0.05, 0.06),
                          opacity=0.92)
        _draw_ellipse(img, *head.at(ex, eye_y), 0.27 * head.r * fore, 0.18 * head.r, head.rot, colour, line=line)
    if len(eyes) == 2:
        (lx, lf), (rx, rf) = eyes
        gap = (rx - lx - 0.27 * (lf + rf)) * head.r
        _draw_rect(img, *head.at(0.5 * (lx + rx), eye_y - 0.03), max(gap, 0.0), line, head.rot, colour)


def _camera(img, rng, head, look: Look) -> np.ndarray:
    """Side light across the face, contrast/brightness, colour cast, grey IR frames, noise."""
    size = img.shape[0]
    k = rng.uniform(-0.2, 0.2)
    img *= (1.0 + k * np.clip((np.arange(size) + 0.5 - head.cx) / (1.2 * head.r), -1.0, 1.0))[None, :, None]
    img = (img - 0.5) * rng.uniform(0.85, 1.1) + (0.5 + rng.uniform(-0.06, 0.06))
    img *= rng.uniform(0.95, 1.05, 3) * look.exposure
    if rng.random() < 0.1 or look.infrared:  # grey, like a near-infrared cabin camera
        img[:] = ((img[..., 0] + img[..., 1] + img[..., 2]) / 3.0)[..., None]
    # Uniform noise scaled to standard deviation sigma (uniform draws are bit-exact).
    sigma = rng.uniform(0.01, 0.025)
    img += (rng.random(img.shape) - 0.5) * (2.0 * 1.7320508075688772 * sigma)
    return np.floor(np.clip(img, 0.0, 1.0) * 255.0 + 0.5).astype(np.uint8)


def render_sample(label: int, rng: np.random.Generator, size: int, look: Look | None = None) -> np.ndarray:
    """One HxWx3 uint8 image of the given class (index into ``CLASSES``), with the factors ``look`` pins."""
    if not 0 <= label < len(CLASSES):
        raise ValueError(f"label must be in [0, {len(CLASSES)}), got {label}")
    if size < 16:
        raise ValueError(f"size must be >= 16, got {size}")
    look = look or Look()
    if look.eyewear is not None and look.eyewear not in EYEWEAR:
        raise ValueError(f"eyewear must be one of {EYEWEAR}, got {look.eyewear!r}")
    img = np.empty((size, size, 3))
    _draw_background(img, rng)

    # Yaw as a half-angle tangent: looking_away turns 45-64 degrees, the others at most 11.
    max_yaw = 0.1 if label == PHONE_USE else 0.05
    yaw_t = rng.uniform(0.42, 0.62) if label == LOOKING_AWAY else rng.uniform(0.0, max_yaw)
    head = _Head(
        cx=size * (0.5 + rng.uniform(-0.15, 0.15)),
        cy=size * (0.52 + rng.uniform(-0.15, 0.15)),
        r=0.42 * size * rng.uniform(0.7, 1.1),
        rot=_rot(rng.uniform(-0.07, 0.07)),  # up to 8 degrees of tilt
        yaw=_rot(yaw_t if rng.random() < 0.5 else -yaw_t),
    )
    if look.yaw is not None:
        head.yaw = _rot(look.yaw)
    r, yaw_s = head.r, head.yaw[1]
    skin_t = rng.random()
    if look.skin is not None:
        skin_t = look.skin
    skin = (_SKIN_LIGHT + skin_t * (_SKIN_DARK - _SKIN_LIGHT)) * rng.uniform(0.85, 1.1)

    clutter = rng.random()
    if clutter < 0.2:  # headrest behind the head
        _draw_rect(img, head.cx + rng.uniform(-0.3, 0.3) * r, head.cy - 0.3 * r, 2.3 * r, 1.6 * r,
                   _UPRIGHT, _muted(rng, 0.25, 0.65))
    elif clutter < 0.3:  # bright side window
        _draw_rect(img, size * rng.uniform(0.0, 1.0), size * rng.uniform(0.0, 0.4), size * rng.uniform(0.2, 0.5),
                   size * rng.uniform(0.2, 0.4), _rot(rng.uniform(-0.3, 0.3)), rng.uniform(0.7, 1.0, 3))

    # Torso and neck do not tilt with the head.
    _draw_ellipse(img, head.cx, head.cy + 2.05 * r, 1.7 * r, r, _UPRIGHT, _muted(rng, 0.15, 0.8))
    _draw_rect(img, head.cx, head.cy + 0.95 * r, 0.7 * r, 0.8 * r, _UPRIGHT, skin * 0.8)

    # A turned face gets narrower and slides towards the turn; the skull (hair) behind it
    # slides the other way, and the ear on the far side comes round onto the cheek.
    face_rx = 0.78 * (1.0 - 0.2 * abs(yaw_s))
    face_ry = 1.08 if label == YAWNING else 1.0  # the jaw drops
    hair = rng.random()
    if look.hat is not None:  # 0.6..0.8 draws a cap (below)
        hair = 0.7 if look.hat else (0.3 if 0.6 <= hair < 0.8 else hair)
    hair_col = _HAIR[rng.integers(len(_HAIR))] * rng.uniform(0.8, 1.1)
    hx, hy = head.at(-0.2 * yaw_s, -0.12)
    if hair < 0.6:
        _draw_ellipse(img, hx, hy, 1.12 * face_rx * r, 1.02 * r, head.rot, hair_col)
    ears = [head.turned((0.0, side)) for side in (-1.0, 1.0)]
    for ex, fore in ears:
        if fore <= 0.2:  # peeks out from behind the outline
            _draw_ellipse(img, *head.at(ex, 0.05), 0.12 * r, 0.2 * r, head.rot, skin * 0.92)
    _draw_ellipse(img, *head.at(0.15 * yaw_s, 0.04 * face_ry - 0.04), face_rx * r, face_ry * r, head.rot, skin)
    for ex, fore in ears:
        if fore > 0.2:
            x, y = head.at(0.95 * ex, 0.05)
            _draw_ellipse(img, x, y, 0.13 * r * fore, 0.2 * r, head.rot, skin * 0.75)
            _draw_ellipse(img, x, y, 0.06 * r * fore, 0.11 * r, head.rot, skin * 0.45)
    fringe = rng.uniform(0.42, 0.62)
    if hair < 0.6:
        _draw_ellipse(img, hx, hy, 1.12 * face_rx * r, 1.02 * r, head.rot, hair_col,
                      keep_v=(-_INF, (0.12 - fringe) * r))
    elif hair < 0.8:  # cap: crown plus a darker brim
        cap = _muted(rng, 0.15, 0.8)
        _draw_ellipse(img, hx, hy, 1.1 * face_rx * r, r, head.rot, cap, keep_v=(-_INF, (0.12 - fringe) * r))
        _draw_ellipse(img, *head.at(0.15 * yaw_s, -fringe), 1.25 * face_rx * r, 0.09 * r, head.rot, cap * 0.6)

    # Brows and eyes; on a turned head the eye on the far side is hidden.
    eye_y = rng.uniform(-0.18, -0.08)
    openness = rng.uniform(0.45, 0.8) if label == YAWNING else rng.uniform(0.8, 1.15)
    if look.openness is not None:  # a yawn still narrows the eyes
        openness = look.openness * (0.6 if label == YAWNING else 1.0)
    gaze = rng.uniform(-0.3, 0.3) + (3.0 * yaw_s if label == LOOKING_AWAY else 0.0)
    if look.gaze is not None:
        gaze = look.gaze
    iris = _IRIS[rng.integers(len(_IRIS))]
    lash = np.minimum(hair_col * 0.4, 0.12)
    eyes = [head.turned((_EYE_ANGLE[0], side * _EYE_ANGLE[1])) for side in (-1.0, 1.0)]
    eyes = [(ex, fore) for ex, fore in eyes if fore >= _MIN_FORE]
    for ex, fore in eyes:
        _draw_ellipse(img, *head.at(ex, eye_y - 0.17), 0.17 * r * fore, 0.035 * r, head.rot, hair_col * 0.7)
        _draw_eye(img, head, ex, fore, eye_y, label == EYES_CLOSED, openness, gaze, iris, skin, lash)

    # The nose stands proud of the head, so on a turned head its tip reaches the outline.
    nx, _ = head.turned(_UPRIGHT)
    _draw_ellipse(img, *head.at(1.1 * nx, 0.08), 0.06 * r, 0.16 * r, head.rot, skin * 0.85, opacity=0.7)
    _draw_ellipse(img, *head.at(1.25 * nx, 0.2), 0.1 * r, 0.1 * r, head.rot, skin * 0.97)
    _draw_ellipse(img, *head.at(1.1 * nx, 0.28), 0.1 * r * head.yaw[0], 0.035 * r, head.rot, skin * 0.6)
    _draw_mouth(img, head, label == YAWNING, skin, rng)

    glasses = rng.random() < 0.3
    if look.eyewear is not None:
        glasses = look.eyewear != "none"
    if glasses:
        _draw_glasses(img, head, eyes, eye_y, rng, dark=look.eyewear == "sunglasses")
    if look.mask:
        _draw_ellipse(img, *head.at(0.15 * yaw_s, 0.5), 0.85 * face_rx * r, 0.45 * r, head.rot, (0.62, 0.78, 0.86))
    if label == PHONE_USE:
        _draw_phone(img, head, face_rx, skin, rng)
    return _camera(img, rng, head, look)



def sample_rng(split: str, index: int, seed: int = DEFAULT_SEED) -> np.random.Generator:
    """Generator for sample ``index`` of ``split``, independent of every other sample."""
    if split not in SPLITS:
        raise ValueError(f"unknown split {split!r}; known splits: {', '.join(SPLITS)}")
    if index < 0:
        raise ValueError(f"index must be >= 0, got {index}")
    seq = np.random.SeedSequence(entropy=seed, spawn_key=(SPLITS.index(split), index))
    return np.random.Generator(np.random.PCG64(seq))


def generate_split(split: str, count: int, size: int = 64,
                   seed: int = DEFAULT_SEED) -> tuple[np.ndarray, np.ndarray]:
    """Returns (images uint8 [count, size, size, 3], labels int64 [count]); label = index % 5.

    Unknown split -> ValueError naming the known splits.
    """
    if split not in SPLITS:
        raise ValueError(f"unknown split {split!r}; known splits: {', '.join(SPLITS)}")
    labels = np.arange(count, dtype=np.int64) % len(CLASSES)
    images = np.empty((count, size, size, 3), dtype=np.uint8)
    for i in range(count):
        images[i] = render_sample(int(labels[i]), sample_rng(split, i, seed), size)
    return images, labels
