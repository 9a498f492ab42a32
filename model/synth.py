"""Procedural anime-style face images, for demos and tests on machines without the real dataset.

Image `index` of a data set with seed `seed` is a pure function of (seed, index): every random
choice comes from `random.Random(f"{seed}:{index}")`, so any image can be redrawn alone and a
larger data set extends a smaller one. Faces are drawn with hard-edged polygons at SUPERSAMPLE
times the target size and reduced with LANCZOS, which is what antialiases them. Only Pillow
and the standard library are used, so a worker can make a data set without torch or numpy.
"""
from __future__ import annotations

import colorsys
import contextlib
import functools
import math
import os
import random
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import NamedTuple

from PIL import Image, ImageChops, ImageDraw

from model.fsutil import TEMP_MARK, fsync_dir

SUPERSAMPLE = 3
# The progress callback (often a network round trip) runs once per CHUNK images.
CHUNK = 64
IMAGE_FOLDER = "faces"

Point = tuple[float, float]
Color = tuple[int, ...]

HAIR_COLORS: list[Color] = [
    (246, 150, 190), (232, 96, 150), (92, 140, 228), (150, 198, 245), (52, 62, 122),
    (250, 224, 132), (236, 186, 78), (48, 42, 58), (96, 62, 46), (152, 98, 62),
    (206, 210, 226), (240, 238, 244), (150, 100, 202), (192, 162, 232), (200, 52, 62),
    (96, 178, 118), (150, 220, 190), (244, 150, 70), (58, 158, 170),
]
EYE_COLORS: list[Color] = [
    (60, 120, 220), (80, 170, 240), (60, 170, 90), (30, 150, 120), (210, 50, 60),
    (170, 30, 70), (140, 70, 200), (180, 110, 230), (230, 170, 40), (210, 130, 40),
    (130, 80, 40), (230, 100, 170), (40, 170, 180), (120, 130, 150),
]
SKIN_TONES: list[Color] = [
    (255, 236, 222), (255, 228, 210), (252, 222, 200), (250, 216, 192), (244, 206, 180),
]
CLOTHES_COLORS: list[Color] = [
    (40, 50, 90), (245, 245, 250), (30, 30, 36), (180, 40, 50), (90, 110, 150),
    (240, 170, 190), (70, 120, 90), (120, 90, 160),
]
RIBBON_COLORS: list[Color] = [
    (230, 60, 80), (255, 255, 255), (250, 200, 60), (90, 120, 230), (40, 40, 50), (240, 130, 190),
]
WHITE: Color = (255, 255, 255)


# ---- geometry and colour helpers -------------------------------------------------------------

def _lerp(a: float, b: float, t: float) -> float:
    return a + (b - a) * t


# Curves and ellipses are sampled from cached weight tables: the drawing is mostly
# point arithmetic in Python, and this is its hot loop.
@functools.cache
def _quad_weights(n: int) -> tuple[tuple[float, float, float], ...]:
    return tuple(((1 - t) ** 2, 2 * (1 - t) * t, t * t) for t in (k / n for k in range(1, n + 1)))


@functools.cache
def _cubic_weights(n: int) -> tuple[tuple[float, float, float, float], ...]:
    return tuple(((1 - t) ** 3, 3 * (1 - t) ** 2 * t, 3 * (1 - t) * t * t, t ** 3)
                 for t in (k / n for k in range(1, n + 1)))


@functools.cache
def _unit_circle(n: int) -> tuple[Point, ...]:
    return tuple((math.cos(2 * math.pi * k / n), math.sin(2 * math.pi * k / n)) for k in range(n))


def _quad(p0: Point, p1: Point, p2: Point, n: int = 8) -> list[Point]:
    """Quadratic Bezier from p0 to p2, p0 left out so that curves chain."""
    (x0, y0), (x1, y1), (x2, y2) = p0, p1, p2
    return [(a * x0 + b * x1 + c * x2, a * y0 + b * y1 + c * y2) for a, b, c in _quad_weights(n)]


def _cubic(p0: Point, p1: Point, p2: Point, p3: Point, n: int = 10) -> list[Point]:
    """Cubic Bezier from p0 to p3, p0 left out."""
    (x0, y0), (x1, y1), (x2, y2), (x3, y3) = p0, p1, p2, p3
    return [(a * x0 + b * x1 + c * x2 + d * x3, a * y0 + b * y1 + c * y2 + d * y3)
            for a, b, c, d in _cubic_weights(n)]


def _arc(cx: float, cy: float, rx: float, ry: float, a0: float, a1: float, n: int = 24
         ) -> list[Point]:
    return [(cx + rx * math.cos(a), cy + ry * math.sin(a))
            for a in (a0 + (a1 - a0) * k / n for k in range(n + 1))]


def _ellipse(cx: float, cy: float, rx: float, ry: float, n: int = 24) -> list[Point]:
    return [(cx + rx * c, cy + ry * s) for c, s in _unit_circle(n)]


class _Affine(NamedTuple):
    """x' = a x + b y + c,  y' = d x + e y + f."""
    a: float
    b: float
    c: float
    d: float
    e: float
    f: float

    def __call__(self, pts: list[Point]) -> list[Point]:
        a, b, c, d, e, f = self
        return [(a * x + b * y + c, d * x + e * y + f) for x, y in pts]

    def then(self, o: _Affine) -> _Affine:
        """This map followed by `o`, as one map."""
        return _Affine(o.a * self.a + o.b * self.d, o.a * self.b + o.b * self.e,
                       o.a * self.c + o.b * self.f + o.c,
                       o.d * self.a + o.e * self.d, o.d * self.b + o.e * self.e,
                       o.d * self.c + o.e * self.f + o.f)


def _translate(dx: float, dy: float) -> _Affine:
    return _Affine(1.0, 0.0, dx, 0.0, 1.0, dy)


def _mix(c1: Color, c2: Color, t: float) -> Color:
    return tuple(round(_lerp(a, b, t)) for a, b in zip(c1, c2, strict=True))


def _shade(c: Color, f: float) -> Color:
    return tuple(max(0, min(255, round(v * f))) for v in c)


def _alpha(c: Color, a: int) -> Color:
    return (*c[:3], a)


def _jitter(rng: random.Random, c: Color, amount: int) -> Color:
    return tuple(max(0, min(255, v + rng.randint(-amount, amount))) for v in c)


def _pastel(rng: random.Random, hue: float | None = None) -> Color:
    h = rng.random() if hue is None else hue % 1.0
    r, g, b = colorsys.hsv_to_rgb(h, rng.uniform(0.08, 0.35), rng.uniform(0.88, 1.0))
    return round(r * 255), round(g * 255), round(b * 255)


def _gradient(top: Color, bottom: Color, size: tuple[int, int]) -> Image.Image:
    """A vertical gradient: `top` over the first quarter, a ramp, `bottom` over the last."""
    ends = Image.new("RGB", (1, 2), top)
    ends.putpixel((0, 1), bottom)
    # Stretching two pixels is far cheaper than computing every row.
    return ends.resize((1, size[1]), Image.BILINEAR).resize(size, Image.NEAREST)


def _bbox(pts: list[Point], pad: int) -> tuple[int, int, int, int]:
    xs, ys = [x for x, _ in pts], [y for _, y in pts]
    return (math.floor(min(xs)) - pad, math.floor(min(ys)) - pad,
            math.ceil(max(xs)) + pad, math.ceil(max(ys)) + pad)


def _mask(pts: list[Point], box: tuple[int, int, int, int]) -> Image.Image:
    """A mask of the polygon `pts` (canvas pixels), covering only `box`. Bilevel, as the
    downsampling antialiases anyway, and pasting through it is ten times faster than "L"."""
    mask = Image.new("1", (box[2] - box[0], box[3] - box[1]), 0)
    ImageDraw.Draw(mask).polygon([(x - box[0], y - box[1]) for x, y in pts], fill=1)
    return mask


# ---- the random look of one face -------------------------------------------------------------

@dataclass
class _Look:
    """What one face looks like. Lengths are in head units: origin at the centre of the skull,
    1 = half the face width, y down."""
    skin: Color
    skin_shadow: Color
    skin_line: Color
    hair: Color
    hair_dark: Color
    hair_line: Color
    hair_light: Color
    eye: Color
    chin: float          # y of the chin tip
    jaw_a: float         # jaw profile: half width at depth s (0..1) is (1 - s**jaw_a) ** jaw_b
    jaw_b: float
    turn: float          # > 0: the face turns toward the viewer's right (a slight 3/4 view)
    eye_y: float
    eye_dx: float        # half the distance between the eye centres
    eye_w: float
    eye_h: float
    eye_tilt: float      # radians; > 0 lifts the outer corners
    light: int           # -1 / +1: the side the eye highlights sit on, the same in both eyes
    cap_cy: float        # hair volume over the skull: an ellipse
    cap_rx: float
    cap_ry: float


def _random_look(rng: random.Random) -> _Look:
    skin = _jitter(rng, rng.choice(SKIN_TONES), 4)
    hair = _jitter(rng, rng.choice(HAIR_COLORS), 12)
    return _Look(
        skin=skin,
        skin_shadow=(round(skin[0] * 0.96), round(skin[1] * 0.83), round(skin[2] * 0.82)),
        skin_line=(round(skin[0] * 0.55), round(skin[1] * 0.36), round(skin[2] * 0.34)),
        hair=hair,
        hair_dark=_shade(hair, 0.72),
        hair_line=_shade(hair, 0.42),
        # A sheen on very dark hair reads as cool blue, not grey.
        hair_light=_mix(hair, (190, 200, 240) if sum(hair) < 200 else WHITE, 0.5),
        eye=_jitter(rng, rng.choice(EYE_COLORS), 15),
        chin=rng.uniform(1.22, 1.42),
        jaw_a=rng.uniform(1.5, 2.2),
        jaw_b=rng.uniform(0.62, 0.85),
        turn=rng.uniform(-0.16, 0.16) if rng.random() < 0.6 else 0.0,
        eye_y=rng.uniform(0.22, 0.32),
        eye_dx=rng.uniform(0.40, 0.48),
        eye_w=rng.uniform(0.50, 0.62),
        eye_h=rng.uniform(0.52, 0.70),
        eye_tilt=rng.uniform(-0.06, 0.14),
        light=rng.choice((-1, 1)),
        cap_cy=rng.uniform(-0.12, -0.04),
        cap_rx=rng.uniform(1.18, 1.30),
        cap_ry=rng.uniform(1.18, 1.32),
    )


class _Canvas:
    """The supersampled image, the face being drawn and `map`, from head units to pixels
    (which holds the head's position, size and tilt in the frame)."""

    def __init__(self, img: Image.Image, look: _Look, rng: random.Random, head_to_px: _Affine,
                 line_w: int) -> None:
        self.img, self.look, self.rng, self.line_w = img, look, rng, line_w
        self.map = head_to_px
        # Blending is slow even for opaque colours, so only colours with alpha go through it.
        self.opaque = ImageDraw.Draw(img)
        self.blend = ImageDraw.Draw(img, "RGBA")

    def pen(self, color: Color) -> ImageDraw.ImageDraw:
        return self.blend if len(color) == 4 else self.opaque

    def fill(self, pts: list[Point], color: Color) -> None:
        self.pen(color).polygon(self.map(pts), fill=color)

    def shape(self, pts: list[Point], color: Color, line: Color) -> None:
        """A filled polygon with an outline centred on its edge. (Pillow's own wide polygon
        outline draws a canvas-sized mask on every call, which doubled the drawing time.)"""
        xy = self.map(pts)
        self.opaque.polygon(xy, fill=color)
        self.opaque.line([*xy, xy[0]], fill=line, width=self.line_w)

    def stroke(self, pts: list[Point], color: Color, width: float = 1.0) -> None:
        self.pen(color).line(self.map(pts), fill=color,
                             width=max(1, round(self.line_w * width)), joint="curve")


# ---- drawing, back to front ------------------------------------------------------------------

def _background(rng: random.Random, canvas: int) -> Image.Image:
    top = _pastel(rng)
    hue = colorsys.rgb_to_hsv(*(v / 255 for v in top))[0] + rng.uniform(-0.1, 0.1)
    img = _gradient(top, _pastel(rng, hue), (canvas, canvas))
    if rng.random() < 0.4:
        # Soft bokeh discs, as in many illustrated backgrounds.
        draw = ImageDraw.Draw(img, "RGBA")
        for _ in range(rng.randint(2, 5)):
            r = rng.uniform(0.05, 0.16) * canvas
            x, y = rng.uniform(0, canvas), rng.uniform(0, canvas)
            draw.ellipse((x - r, y - r, x + r, y + r), fill=(255, 255, 255, rng.randint(40, 90)))
    return img


def _draw_tails(cv: _Canvas) -> list[Point]:
    """Twin-tails, or one side ponytail, behind the head; returns where their ties go."""
    look, rng = cv.look, cv.rng
    style = rng.random()
    sides = [-1, 1] if style < 0.2 else [rng.choice((-1, 1))] if style < 0.28 else []
    length, width = rng.uniform(2.2, 3.2), rng.uniform(0.7, 1.0)
    roots = []
    for side in sides:
        x, y = root = (side * look.cap_rx * 0.82, look.cap_cy - look.cap_ry * 0.5)
        tip = (x + side * width * 0.55, y + length)
        outer = _cubic(root, (x + side * width * 1.1, y - 0.1),
                       (x + side * width * 1.3, y + length * 0.5), tip)
        inner = _cubic(tip, (x + side * width * 0.2, y + length * 0.55),
                       (x + side * width * 0.05, y + 0.4), (x + side * 0.15, y + 0.15))
        cv.shape([root, *outer, *inner], look.hair_dark, look.hair_line)
        cv.stroke(_quad(root, (x + side * width * 0.8, y + length * 0.4), tip, 8)[:-2],
                  look.hair_line)
        roots.append(root)
    return roots


def _hair_ends(right: Point, left: Point, tips: int, depth: float, rng: random.Random
               ) -> list[Point]:
    """Pointed hair ends from `right` to `left`, with notches `depth` above the tips."""
    pts: list[Point] = []
    prev = right
    for k in range(tips):
        t = (k + 0.5) / tips
        tip = (_lerp(right[0], left[0], t) + rng.uniform(-0.05, 0.05),
               _lerp(right[1], left[1], t) + rng.uniform(-0.1, 0.12))
        notch = left if k == tips - 1 else (
            _lerp(right[0], left[0], (k + 1) / tips),
            _lerp(right[1], left[1], (k + 1) / tips) - depth * rng.uniform(0.7, 1.2))
        pts += _quad(prev, (_lerp(prev[0], tip[0], 0.25), _lerp(prev[1], tip[1], 0.6)), tip, 5)
        pts += _quad(tip, (_lerp(notch[0], tip[0], 0.25), _lerp(notch[1], tip[1], 0.6)), notch, 5)
        prev = notch
    return pts


def _draw_back_hair(cv: _Canvas) -> float:
    """The hair mass behind the head (shadowed, so darker); returns the y of its ends."""
    look, rng = cv.look, cv.rng
    style = rng.random()
    if style < 0.55:
        y_end, width = rng.uniform(2.0, 2.8), rng.uniform(1.4, 1.75)
    elif style < 0.8:
        y_end, width = rng.uniform(1.4, 1.8), rng.uniform(1.35, 1.55)
    else:
        y_end, width = rng.uniform(0.9, 1.25), rng.uniform(1.25, 1.38)
    rx, ry, cy = look.cap_rx + 0.04, look.cap_ry + 0.03, look.cap_cy
    top = _arc(0.0, cy, rx, ry, math.pi, 2 * math.pi, 28)
    right = _quad((rx, cy), (width + 0.08, _lerp(cy, y_end, 0.5)), (width, y_end), 8)
    ends = _hair_ends((width, y_end), (-width, y_end), rng.randint(4, 7), 0.35, rng)
    left = _quad((-width, y_end), (-width - 0.08, _lerp(cy, y_end, 0.5)), (-rx, cy), 8)
    cv.shape(top + right + ends + left, look.hair_dark, look.hair_line)
    return y_end


def _draw_body(cv: _Canvas) -> None:
    """Neck, shadowed under the chin, and the top of the clothes."""
    look, rng = cv.look, cv.rng
    c, nx, hw = look.chin, look.turn * 0.3, rng.uniform(0.30, 0.38)
    cv.fill([(nx - hw, 0.6), (nx + hw, 0.6), (nx + hw * 1.1, 3.0), (nx - hw * 1.1, 3.0)],
            look.skin_shadow)
    lit_edge = _quad((nx - hw, c + 0.12), (nx, c + 0.5), (nx + hw * 1.05, c + 0.12), 8)
    cv.fill([(nx - hw * 1.05, c + 0.12), *lit_edge, (nx + hw * 1.1, 3.0), (nx - hw * 1.1, 3.0)],
            look.skin)
    cloth = _jitter(rng, rng.choice(CLOTHES_COLORS), 10)
    v = c + rng.uniform(0.7, 1.0)
    cv.shape([(-3.0, c + 0.8), (nx - hw - 0.05, c + 0.42), (nx, v), (nx + hw + 0.05, c + 0.42),
              (3.0, c + 0.8), (3.0, 4.0), (-3.0, 4.0)], cloth, _shade(cloth, 0.5))
    if rng.random() < 0.5:
        # A contrasting collar stripe along the neckline (sailor or blazer style).
        trim = WHITE if sum(cloth) < 500 else (40, 50, 90)
        cv.stroke([(nx - hw - 0.5, c + 0.62), (nx, v + 0.22), (nx + hw + 0.5, c + 0.62)], trim, 3)


def _face_outline(look: _Look) -> list[Point]:
    """Round skull on top, then a jaw that narrows into a small rounded chin."""
    top = _arc(0.0, 0.0, 1.0, 1.0, math.pi, 2 * math.pi, 24)
    right, left = [], []
    n = 16
    for k in range(1, n + 1):
        s = k / n
        hw = (1 - s ** look.jaw_a) ** look.jaw_b
        shift = look.turn * 0.4 * s * s
        right.append((hw + shift, s * look.chin))
        left.append((-hw + shift, s * look.chin))
    return top + right + left[-2::-1]


def _draw_face(cv: _Canvas) -> Image.Image:
    """Skin and outline; returns the face mask, which keeps shadows on the skin."""
    outline = _face_outline(cv.look)
    cv.shape(outline, cv.look.skin, cv.look.skin_line)
    return _mask(cv.map(outline), (0, 0, *cv.img.size))


def _draw_blush(cv: _Canvas) -> None:
    look, rng = cv.look, cv.rng
    if rng.random() > 0.55:
        return
    y = look.eye_y + look.eye_h * 0.5 + 0.16
    pink, strength = (255, 110, 130), rng.randint(60, 110)
    hatch = rng.random() < 0.5
    for side in (-1, 1):
        x = look.turn * 0.4 + side * (look.eye_dx + 0.12)
        cv.fill(_ellipse(x, y, 0.21, 0.09, 20), _alpha(pink, strength))
        if hatch:
            # Short diagonal strokes: the manga way of drawing a blush.
            for k in (-1, 0, 1):
                hx = x + k * 0.08
                cv.stroke([(hx + 0.03, y - 0.05), (hx - 0.03, y + 0.05)],
                          _alpha(_shade(pink, 0.85), 170))


def _eye_shapes(w: float, h: float) -> tuple[list[Point], list[Point], list[Point], list[Point]]:
    """One eye in its own coordinates (origin at its centre, +x toward the outer corner):
    sclera outline, upper lid curve, lash line and lower lash."""
    inner, outer = (-0.5 * w, 0.02 * h), (0.52 * w, -0.2 * h)
    upper = [inner, *_cubic(inner, (-0.38 * w, -0.6 * h), (0.3 * w, -0.64 * h), outer, 14)]
    lower = _cubic(outer, (0.42 * w, 0.42 * h), (-0.22 * w, 0.52 * h), inner, 12)
    # The lash line is thin at the inner corner, heavy at the outer one and ends in a flick.
    top_edge, bottom_edge = [], []
    for k, (x, y) in enumerate(upper):
        t = k / (len(upper) - 1)
        top_edge.append((x, y - h * (0.03 + 0.15 * t ** 1.4)))
        bottom_edge.append((x, y + h * 0.03))
    lash = top_edge + [(0.7 * w, -0.32 * h)] + bottom_edge[::-1]
    return upper + lower[:-1], upper, lash, lower[:5]


def _draw_eye(cv: _Canvas, side: int) -> None:
    look, rng = cv.look, cv.rng
    w = look.eye_w * (1.0 + side * look.turn * 1.1)  # the eye turned away looks narrower
    h = look.eye_h
    cx, cy = side * look.eye_dx + look.turn * 0.45, look.eye_y
    c, s = math.cos(look.eye_tilt), math.sin(look.eye_tilt)
    # Eye coordinates to canvas pixels: mirror to this side, tilt, then the head's map.
    place = _Affine(side * c, side * s, cx, -s, c, cy).then(cv.map)
    sclera, upper, lash, lower_lash = _eye_shapes(w, h)
    sclera_xy = place(sclera)
    x0, y0, x1, y1 = _bbox(sclera_xy, 2)
    local = place.then(_translate(-x0, -y0))  # to pixels of the eye's own patch

    # The iris is drawn on a patch pasted through the sclera shape, so the lids cut it.
    patch = Image.new("RGB", (x1 - x0, y1 - y0), (250, 250, 255))
    pd = ImageDraw.Draw(patch, "RGBA")
    irx, iry = w * rng.uniform(0.30, 0.37), h * rng.uniform(0.50, 0.56)
    ix, iy = -0.04 * w, 0.04 * h
    iris = local(_ellipse(ix, iy, irx, iry, 28))
    box = _bbox(iris, 0)
    ramp = _gradient(_shade(look.eye, 0.42), _mix(look.eye, WHITE, 0.4),
                     (box[2] - box[0], box[3] - box[1]))
    patch.paste(ramp, box[:2], _mask(iris, box))
    pd.line([*iris, iris[0]], fill=_shade(look.eye, 0.3), width=cv.line_w)
    pd.polygon(local(_ellipse(ix, iy - 0.05 * h, irx * 0.42, iry * 0.46, 20)),
               fill=_shade(look.eye, 0.2))
    # The upper lid's shadow across the top of the eye.
    lid_shadow = upper + [(x, y + 0.17 * h) for x, y in reversed(upper)]
    pd.polygon(local(lid_shadow), fill=(40, 30, 60, 70))
    # Highlights: on the same side in both eyes, as there is one light.
    lx = side * look.light
    pd.polygon(local(_ellipse(ix - lx * irx * 0.38, iy - iry * 0.4, irx * 0.34, iry * 0.28, 16)),
               fill=WHITE)
    pd.polygon(local(_ellipse(ix + lx * irx * 0.4, iy + iry * 0.42, irx * 0.14, iry * 0.11, 12)),
               fill=(255, 255, 255, 220))
    cv.img.paste(patch, (x0, y0), _mask(sclera_xy, (x0, y0, x1, y1)))

    lash_color = (42, 28, 36) if rng.random() < 0.7 else _shade(look.hair_line, 0.7)
    cv.opaque.polygon(place(lash), fill=lash_color)
    cv.opaque.line(place(lower_lash), fill=_shade(look.skin_line, 0.9), width=cv.line_w)


def _draw_brows(cv: _Canvas) -> None:
    look, rng = cv.look, cv.rng
    lift, arch = rng.uniform(0.12, 0.22), rng.uniform(0.03, 0.08)
    for side in (-1, 1):
        cx = side * look.eye_dx + look.turn * 0.45
        y = look.eye_y - look.eye_h * 0.6 - lift
        a, b = (cx - side * 0.22, y + 0.02), (cx + side * 0.28, y + 0.05)
        top, bottom = _quad(a, (cx, y - arch - 0.03), b, 8), _quad(b, (cx, y - arch + 0.02), a, 8)
        cv.fill([a, *top, *bottom], look.hair_line)


def _draw_nose_mouth(cv: _Canvas) -> None:
    look, rng = cv.look, cv.rng
    mid = look.turn * 0.5
    my = look.eye_y + rng.uniform(0.62, 0.72)
    ny = _lerp(look.eye_y, my, 0.6)
    cv.stroke([(mid + 0.01, ny - 0.03), (mid - 0.02, ny + 0.03)], _shade(look.skin_line, 1.3))
    kind = rng.random()
    mouth_dark, line = (150, 50, 60), _shade(look.skin_line, 0.8)
    if kind < 0.4:  # a small line, flat or smiling
        w, smile = rng.uniform(0.08, 0.16), rng.uniform(-0.01, 0.04)
        cv.stroke([(mid - w, my), *_quad((mid - w, my), (mid, my + smile * 2), (mid + w, my), 6)],
                  line)
    elif kind < 0.8:  # an open smile with a tongue
        w, d = rng.uniform(0.1, 0.17), rng.uniform(0.1, 0.17)
        left, right = (mid - w, my), (mid + w, my)
        bottom = _cubic(right, (mid + w * 0.8, my + d), (mid - w * 0.8, my + d), left, 10)
        cv.shape([left, right, *bottom], mouth_dark, line)
        t0, t1 = (mid + w * 0.55, my + d * 0.55), (mid - w * 0.55, my + d * 0.55)
        tongue = _cubic(t0, (mid + w * 0.4, my + d * 0.8), (mid - w * 0.4, my + d * 0.8), t1, 8)
        cv.fill([*tongue, *_quad(t1, (mid, my + d * 0.3), t0, 6)], (235, 120, 130))
    else:  # a small surprised 'o'
        r = rng.uniform(0.04, 0.06)
        cv.shape(_ellipse(mid, my + r, r * 0.9, r * 1.15, 16), mouth_dark, line)


def _fringe(look: _Look, rng: random.Random) -> tuple[list[Point], list[Point]]:
    """Front hair: the cap over the skull plus pointed locks over the forehead, the outer
    ones longer so that they frame the face. Returns the outline and the notches."""
    rx, ry, cy = look.cap_rx, look.cap_ry, look.cap_cy
    over = rng.uniform(0.35, 0.5)  # how far the cap wraps down the temples
    cap = _arc(0.0, cy, rx, ry, math.pi - over, 2 * math.pi + over, 30)
    locks = rng.randint(5, 8)
    length = rng.uniform(-0.28, 0.02)
    sweep = rng.uniform(-0.15, 0.15)
    part = rng.randrange(1, locks) if rng.random() < 0.4 else -1  # a deeper notch: a parting
    pts: list[Point] = []
    notches: list[Point] = []
    prev = cap[-1]
    for k in range(locks):
        x = _lerp(0.98, -0.98, (k + 0.5) / locks)
        tip = (x + sweep * (1 - abs(x)) + rng.uniform(-0.05, 0.05),
               length + 0.55 * abs(x) ** 3 + rng.uniform(-0.08, 0.08))
        if k == locks - 1:
            notch = cap[0]
        else:
            depth = rng.uniform(0.3, 0.5) + (0.3 if k + 1 == part else 0.0)
            notch = (_lerp(0.98, -0.98, (k + 1) / locks) + sweep * 0.3, tip[1] - depth)
            notches.append(notch)
        # Control points near the notch side: the edges leave a notch steeply (a narrow V)
        # and meet at an angle at the tip, so each lock is a curved point.
        pts += _quad(prev, (_lerp(prev[0], tip[0], 0.2), _lerp(prev[1], tip[1], 0.6)), tip, 6)
        pts += _quad(tip, (_lerp(notch[0], tip[0], 0.2), _lerp(notch[1], tip[1], 0.6)), notch, 6)
        prev = notch
    return cap + pts, notches


def _side_lock(look: _Look, side: int, length: float) -> list[Point]:
    root_out = (side * (look.cap_rx - 0.04), look.cap_cy + 0.1)
    root_in = (side * 0.72, look.cap_cy - 0.25)
    tip = (side * 0.9, length)
    outer = _quad(root_out, (side * 1.18, _lerp(root_out[1], length, 0.5)), tip, 10)
    inner = _quad(tip, (side * 0.8, _lerp(root_in[1], length, 0.4)), root_in, 10)
    return [root_out, *outer, *inner]


def _draw_front_hair(cv: _Canvas, face_mask: Image.Image, back_len: float) -> None:
    look, rng = cv.look, cv.rng
    fringe, notches = _fringe(look, rng)
    # The fringe's shadow on the forehead, kept on the skin by the face mask.
    drop = cv.map([(x, y + 0.12) for x, y in fringe])
    box = _bbox(drop, 1)
    on_skin = ImageChops.logical_and(_mask(drop, box), face_mask.crop(box))
    cv.img.paste(look.skin_shadow, box, on_skin)

    if rng.random() < 0.8:
        length = min(back_len, rng.uniform(0.7, 1.5))
        for side in (-1, 1):
            lock = _side_lock(look, side, length + rng.uniform(-0.1, 0.1))
            cv.shape(lock, look.hair, look.hair_line)
    cv.shape(fringe, look.hair, look.hair_line)
    # Strands: a line from each notch up toward the crown.
    for x, y in notches:
        cv.stroke([(x, y), (x * 0.8, y - rng.uniform(0.25, 0.45))], look.hair_line)
    _draw_hair_shine(cv)


def _draw_hair_shine(cv: _Canvas) -> None:
    """The 'angel ring': a band of small pointed highlights across the crown."""
    look, rng = cv.look, cv.rng
    r, n = rng.uniform(0.62, 0.78), rng.randint(5, 8)
    for k in range(n):
        a = math.pi * (1.2 + 0.6 * (k + 0.5) / n)
        x, y = look.cap_rx * r * math.cos(a), look.cap_cy + look.cap_ry * r * math.sin(a)
        cv.fill([(x, y - 0.07), (x + 0.05, y), (x, y + rng.uniform(0.12, 0.2)), (x - 0.05, y)],
                _alpha(look.hair_light, 200))


def _draw_ahoge(cv: _Canvas) -> None:
    """The single strand that sticks up from the crown."""
    look, rng = cv.look, cv.rng
    if rng.random() > 0.3:
        return
    x0, d = rng.uniform(-0.3, 0.3), rng.choice((-1, 1))
    y0 = look.cap_cy - look.cap_ry + 0.06
    tip = (x0 + d * 0.38, y0 - 0.42)
    outer = _quad((x0 - d * 0.06, y0), (x0 + d * 0.02, y0 - 0.55), tip, 10)
    inner = _quad(tip, (x0 + d * 0.1, y0 - 0.3), (x0 + d * 0.07, y0), 10)
    cv.shape([(x0 - d * 0.06, y0), *outer, *inner], look.hair, look.hair_line)


def _draw_accessories(cv: _Canvas, tail_roots: list[Point]) -> None:
    """Ties on the tails, sometimes a ribbon on the hair."""
    look, rng = cv.look, cv.rng
    color = _jitter(rng, rng.choice(RIBBON_COLORS), 10)
    edge = _shade(color, 0.55)
    for x, y in tail_roots:
        cv.shape(_ellipse(x, y, 0.1, 0.1, 12), color, edge)
    if rng.random() < 0.25:
        side = rng.choice((-1, 1))
        a = math.pi * (1.5 + side * rng.uniform(0.2, 0.32))
        x, y = look.cap_rx * 0.9 * math.cos(a), look.cap_cy + look.cap_ry * 0.9 * math.sin(a)
        s = rng.uniform(0.22, 0.3)
        for d in (-1, 1):
            wing = [(x, y), (x + d * s, y - s * 0.6), (x + d * s * 1.1, y + s * 0.5)]
            cv.shape(wing, color, edge)
        cv.shape(_ellipse(x, y, s * 0.25, s * 0.25, 10), color, edge)


def draw_face(seed: int, index: int, size: int = 96) -> Image.Image:
    """Image `index` of the synthetic data set `seed`: an RGB anime-style face, size x size."""
    rng = random.Random(f"{seed}:{index}")
    canvas = size * SUPERSAMPLE
    look = _random_look(rng)
    img = _background(rng, canvas)
    # Where the head sits: centre, size (pixels per head unit) and tilt.
    cx, cy = canvas * (0.5 + rng.uniform(-0.05, 0.05)), canvas * rng.uniform(0.40, 0.47)
    unit, angle = canvas * rng.uniform(0.26, 0.33), rng.uniform(-0.12, 0.12)
    c, s = math.cos(angle) * unit, math.sin(angle) * unit
    cv = _Canvas(img, look, rng, _Affine(c, -s, cx, s, c, cy), line_w=max(1, round(canvas / 128)))
    tail_roots = _draw_tails(cv)
    back_len = _draw_back_hair(cv)
    _draw_body(cv)
    face_mask = _draw_face(cv)
    _draw_blush(cv)
    _draw_brows(cv)
    for side in (-1, 1):
        _draw_eye(cv, side)
    _draw_nose_mouth(cv)
    _draw_front_hair(cv, face_mask, back_len)
    _draw_ahoge(cv)
    _draw_accessories(cv, tail_roots)
    # reducing_gap: box-reduce 2x first, then LANCZOS; twice as fast, same look.
    return img.resize((size, size), Image.LANCZOS, reducing_gap=1.5)


def _write_png(img: Image.Image, path: Path) -> None:
    """Write under a temp name beside `path`, then rename: a reader, or a re-run after a crash,
    never finds a partial file under the final name. The temp name follows model.fsutil's
    convention (dot-prefixed, so image listings skip it, and remove_stale_temp_files finds it).
    Files are not fsynced one by one, which would dominate the run time; write_dataset syncs
    the folder once at the end."""
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}{TEMP_MARK}")
    try:
        with os.fdopen(fd, "wb") as f:
            # Level 1: 40% faster than the default for files only ~6% larger.
            img.save(f, "PNG", compress_level=1)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


def draw_chunk(folder: str, seed: int, size: int, digits: int, indices: list[int]) -> int:
    """Write images `indices` of data set `seed` into `folder` (a process's task in
    write_dataset); returns how many."""
    for i in indices:
        _write_png(draw_face(seed, i, size), Path(folder) / f"{i:0{digits}d}.png")
    return len(indices)


def write_dataset(out_dir: Path, count: int, seed: int = 0, size: int = 96,
                  workers: int | None = None,
                  progress: Callable[[int, int], None] | None = None) -> int:
    """Write images 0 .. count-1 of data set `seed` as `out_dir/faces/00000.png`, ... (the
    ImageFolder layout: one class folder), numbered with at least 5 digits.

    Files already there under their final name are kept, so a re-run only fills the gaps.
    Drawing is Python, so it runs in `workers` processes (model/parallel.py; default one per
    core), CHUNK images a task. `progress(done, count)` is called from the calling thread after
    every chunk, `done` counting the kept files too; an exception it raises stops the run (to
    cancel it) once the chunks in flight are written. Returns how many files this call wrote.
    """
    if count < 0:
        raise ValueError(f"count must be >= 0, got {count}")
    folder = Path(out_dir) / IMAGE_FOLDER
    folder.mkdir(parents=True, exist_ok=True)
    digits = max(5, len(str(count - 1)))
    present = set(os.listdir(folder))
    missing = [i for i in range(count) if f"{i:0{digits}d}.png" not in present]
    done = count - len(missing)
    tasks = [(str(folder), seed, size, digits, missing[k:k + CHUNK]) for k in range(0, len(missing), CHUNK)]

    def record(written: int, _task: int = 0) -> None:
        nonlocal done
        done += written
        if progress:
            progress(done, count)

    from model.parallel import cpu_count, map_in_processes
    workers = min(workers or cpu_count(), len(tasks))
    if workers > 1:
        # A task in flight is ~0.1 s of drawing: let it finish, so no temp file is left behind.
        map_in_processes("model.synth:draw_chunk", tasks, workers, record, grace=60.0)
    else:
        for task in tasks:
            record(draw_chunk(*task))
    if missing:
        fsync_dir(folder)
    return len(missing)
