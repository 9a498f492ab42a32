"""The image sets the quality benchmark trains on, made locally (nothing is downloaded at run time):

- "synthetic": the procedural anime faces of `python -m model synth` (the demo job's data);
- "emoji": every single-code-point emoji of Debian's Noto Color Emoji font
  (`apt-get install fonts-noto-color-emoji`), drawn at the font's native bitmap size, centred on
  white and reduced to 96x96: about 1,400 crisp, varied, colourful images (faces, animals, food,
  objects, symbols), a different data distribution from the synthetic faces;
- "avatars": cartoon portraits in Pablo Stanley's Avataaars style (the `python-avatars` package,
  drawn with `cairosvg`): flat-shaded people of every skin tone with varied hair, hats, glasses,
  expressions and clothes on a plain coloured background; a third source, neither anime nor emoji.
"""
from __future__ import annotations

import struct
from pathlib import Path

from PIL import Image, ImageDraw, ImageFont

EMOJI_FONT_PATHS = (
    "/usr/share/fonts/truetype/noto/NotoColorEmoji.ttf",
    "/usr/share/fonts/noto/NotoColorEmoji.ttf",
)
# Noto Color Emoji's bitmaps are 136x128 and are only drawn at this size.
EMOJI_FONT_SIZE = 109
SIDE = 96


class MissingFont(RuntimeError):
    pass


def emoji_font_path() -> Path:
    for p in EMOJI_FONT_PATHS:
        if Path(p).exists():
            return Path(p)
    raise MissingFont("the emoji image set needs Noto Color Emoji: apt-get install fonts-noto-color-emoji")


def _cmap_code_points(font_file: Path) -> list[int]:
    """Code points with a glyph, from the font's format-12 (or format-4) cmap subtable."""
    data = font_file.read_bytes()
    num_tables = struct.unpack(">H", data[4:6])[0]
    tables = {}
    for i in range(num_tables):
        tag, _, offset, length = struct.unpack(">4sIII", data[12 + 16 * i:28 + 16 * i])
        tables[tag] = offset
    cmap = tables[b"cmap"]
    n_sub = struct.unpack(">H", data[cmap + 2:cmap + 4])[0]
    points: set[int] = set()
    for i in range(n_sub):
        _, _, off = struct.unpack(">HHI", data[cmap + 4 + 8 * i:cmap + 12 + 8 * i])
        sub = cmap + off
        fmt = struct.unpack(">H", data[sub:sub + 2])[0]
        if fmt == 12:
            n_groups = struct.unpack(">I", data[sub + 12:sub + 16])[0]
            for g in range(n_groups):
                start, end, _ = struct.unpack(">III", data[sub + 16 + 12 * g:sub + 28 + 12 * g])
                points.update(range(start, end + 1))
        elif fmt == 4:
            seg_x2 = struct.unpack(">H", data[sub + 6:sub + 8])[0]
            ends = struct.unpack(f">{seg_x2 // 2}H", data[sub + 14:sub + 14 + seg_x2])
            starts = struct.unpack(f">{seg_x2 // 2}H", data[sub + 16 + seg_x2:sub + 16 + 2 * seg_x2])
            for s, e in zip(starts, ends, strict=False):
                if s != 0xFFFF:
                    points.update(range(s, e + 1))
    return sorted(points)


def emoji_code_points(font_file: Path) -> list[int]:
    """Pictographs only: keycap digits, letters, regional indicators, modifiers and joiners
    (which the font maps but which are not pictures alone) are left out."""
    skip = set(range(0x30, 0x3A)) | {0x23, 0x2A, 0x20, 0xA9, 0xAE, 0x200D, 0x20E3, 0xFE0F}
    skip |= set(range(0x1F1E6, 0x1F200)) | set(range(0x1F3FB, 0x1F400)) | set(range(0xE0020, 0xE0080))
    return [c for c in _cmap_code_points(font_file) if c > 0xFF and c not in skip]


def draw_emoji(font: ImageFont.FreeTypeFont, code_point: int) -> Image.Image | None:
    """One emoji centred on white, 96x96; None when the font draws nothing for it."""
    ch = chr(code_point)
    box = font.getbbox(ch)
    if box[2] - box[0] <= 0 or box[3] - box[1] <= 0:
        return None
    side = max(box[2] - box[0], box[3] - box[1])
    canvas = Image.new("RGBA", (side, side), (255, 255, 255, 255))
    glyph = Image.new("RGBA", (side, side), (255, 255, 255, 0))
    ImageDraw.Draw(glyph).text(((side - (box[2] - box[0])) / 2 - box[0], (side - (box[3] - box[1])) / 2 - box[1]),
                               ch, font=font, embedded_color=True)
    if glyph.getbbox() is None:
        return None
    canvas = Image.alpha_composite(canvas, glyph).convert("RGB")
    return canvas.resize((SIDE, SIDE), Image.Resampling.LANCZOS)


def write_emoji(folder: Path) -> int:
    """Writes folder/emoji/uXXXXX.png once (kept if already complete); returns the image count."""
    sub = Path(folder) / "emoji"
    done = sub / ".complete"
    if done.exists():
        return len(list(sub.glob("*.png")))
    font_file = emoji_font_path()
    font = ImageFont.truetype(str(font_file), EMOJI_FONT_SIZE)
    sub.mkdir(parents=True, exist_ok=True)
    n = 0
    for cp in emoji_code_points(font_file):
        im = draw_emoji(font, cp)
        if im is not None:
            im.save(sub / f"u{cp:05x}.png")
            n += 1
    done.write_text(str(n))
    return n


def write_synthetic(folder: Path, count: int = 1024) -> int:
    from model.synth import write_dataset

    folder = Path(folder)
    if not (folder / "faces").is_dir() or len(list((folder / "faces").iterdir())) < count:
        write_dataset(folder, count, seed=0)
    return count


# Backgrounds of the avatars set (light, varied): python-avatars' own are few.
AVATAR_BACKGROUNDS = ("#65C9FF", "#FFD8A8", "#C3F0CA", "#F8C8DC", "#D0BFFF", "#FFF3BF", "#E9ECEF", "#A5D8FF")


def draw_avatar(index: int) -> Image.Image:
    """Avatar `index` (96x96): its features drawn from random.Random(index), the head and
    shoulders cropped square."""
    import io
    import random

    import cairosvg
    import python_avatars as pa

    state = random.getstate()  # python-avatars draws from the global generator
    random.seed(f"avatar:{index}")
    try:
        avatar = pa.Avatar.random(style=pa.AvatarStyle.TRANSPARENT)
        background = random.choice(AVATAR_BACKGROUNDS)
    finally:
        random.setstate(state)
    png = cairosvg.svg2png(bytestring=avatar.render().encode(), output_width=264, output_height=280)
    with Image.open(io.BytesIO(png)) as im:
        drawn = im.convert("RGBA")
    canvas = Image.new("RGBA", drawn.size, background)
    square = Image.alpha_composite(canvas, drawn).convert("RGB").crop((0, 16, 264, 280))
    return square.resize((SIDE, SIDE), Image.Resampling.LANCZOS)


def write_avatars(folder: Path, count: int = 1024) -> int:
    """Writes folder/avatars/NNNNN.png once (kept if already complete); returns the count."""
    sub = Path(folder) / "avatars"
    done = sub / ".complete"
    if done.exists():
        return len(list(sub.glob("*.png")))
    sub.mkdir(parents=True, exist_ok=True)
    for i in range(count):
        draw_avatar(i).save(sub / f"{i:05d}.png")
    done.write_text(str(count))
    return count


MAKERS = {"synthetic": write_synthetic, "emoji": write_emoji, "avatars": write_avatars}
