"""PNG charts of results, drawn with Pillow (matplotlib is not a dependency)."""

import math
from pathlib import Path

from bench.results import Row, fmt


PALETTE = ["#4C78A8", "#F58518", "#54A24B", "#B279A2", "#E45756", "#72B7B2"]
PASS_COLOUR, MISS_COLOUR, INFO_COLOUR = "#54A24B", "#E45756", "#9D9D9D"


_GLYPHS = {"→": "->", "≤": "<=", "≥": ">=", "×": "x", "…": "..."}


def _plain(text: str) -> str:
    """Pillow's default font has no arrows or inequality signs."""
    for glyph, plain in _GLYPHS.items():
        text = text.replace(glyph, plain)
    return text


def _font(size: int):
    from PIL import ImageFont

    try:
        return ImageFont.load_default(size=size)
    except TypeError:  # an older Pillow: one bitmap size
        return ImageFont.load_default()


def bar_chart(path: Path, title: str, groups: list[tuple[str, list[tuple[str, float]]]],
              unit: str = "", subtitle: str = "") -> None:
    """Horizontal grouped bars: one group per label, one bar per (series, value), each
    labelled with its value. Series keep their colour across groups."""
    from PIL import Image, ImageDraw

    series = []
    for _, bars in groups:
        for name, _ in bars:
            if name not in series:
                series.append(name)
    colours = {name: PALETTE[i % len(PALETTE)] for i, name in enumerate(series)}
    values = [v for _, bars in groups for _, v in bars if v is not None and not math.isnan(v)]
    top = max(values) if values else 1.0
    font, small, big = _font(15), _font(13), _font(20)
    bar_h, gap, label_w, width = 20, 14, 300, 1100
    plot_w = width - label_w - 140
    height = 90 + sum(len(bars) * bar_h + gap for _, bars in groups) + 40
    image = Image.new("RGB", (width, height), "white")
    draw = ImageDraw.Draw(image)
    draw.text((16, 12), _plain(title), fill="black", font=big)
    if subtitle:
        draw.text((16, 40), _plain(subtitle), fill="#555555", font=small)
    x = 16
    for name in series:  # legend
        draw.rectangle((x, 64, x + 12, 76), fill=colours[name])
        draw.text((x + 18, 62), _plain(name), fill="black", font=small)
        x += 30 + int(draw.textlength(_plain(name), font=small))
    y = 90
    for label, bars in groups:
        draw.text((16, y + (len(bars) * bar_h) / 2 - 9), _plain(label), fill="black", font=font)
        for name, value in bars:
            length = 0 if not value or math.isnan(value) else int(plot_w * value / top)
            draw.rectangle((label_w, y + 2, label_w + max(length, 1), y + bar_h - 2),
                           fill=colours[name])
            draw.text((label_w + length + 6, y + 2), fmt(value, unit), fill="black", font=small)
            y += bar_h
        y += gap
    draw.line((label_w, 86, label_w, y - gap + 4), fill="#888888")
    image.save(path)


def ratio_chart(path: Path, title: str, rows, subtitle: str = "") -> None:
    """One line per row: the ratio as a bar from 1 on a log axis (0.01 to 100), the
    target as a black mark; green where it is met, red where missed, grey for rows
    shown for information."""
    from PIL import Image, ImageDraw

    rows = [r for r in rows if isinstance(r, Row) and not math.isnan(r.ratio)]
    font, small, big = _font(15), _font(13), _font(20)
    bar_h, label_w, width = 26, 560, 1480
    plot_w = width - label_w - 40
    decades = (-2, 2)  # log10 of the axis' ends

    def x(ratio: float) -> int:
        ratio = min(max(ratio, 10 ** decades[0]), 10 ** decades[1])
        return label_w + int(plot_w * (math.log10(ratio) - decades[0]) /
                             (decades[1] - decades[0]))

    height = 80 + len(rows) * bar_h + 60
    image = Image.new("RGB", (width, height), "white")
    draw = ImageDraw.Draw(image)
    draw.text((16, 12), _plain(title), fill="black", font=big)
    if subtitle:
        draw.text((16, 42), _plain(subtitle), fill="#555555", font=small)
    top, y = 72, 72
    for row in rows:
        colour = {True: PASS_COLOUR, False: MISS_COLOUR, None: INFO_COLOUR}[row.passed]
        name = _plain(row.name)
        while draw.textlength(name, font=font) > label_w - 24 and len(name) > 10:
            name = name[:-2]
        if name != _plain(row.name):
            name = name.rstrip() + "..."
        draw.text((16, y + 4), name, fill="black", font=font)
        a, b = sorted((x(1.0), x(row.ratio)))
        draw.rectangle((a, y + 4, max(b, a + 1), y + bar_h - 4), fill=colour)
        text = f"{row.ratio:.2f}  ({row.target_text}, {row.verdict})"
        after = max(b, x(1.0), x(row.target[1]) + 2 if row.target else 0)
        draw.text((after + 6, y + 5), _plain(text), fill="black", font=small)
        if row.target:
            tx = x(row.target[1])
            draw.line((tx, y + 1, tx, y + bar_h - 1), fill="black", width=3)
        y += bar_h
    for power in range(decades[0], decades[1] + 1):
        tx = x(10.0 ** power)
        draw.line((tx, top - 4, tx, y + 2), fill="#888888" if power == 0 else "#DDDDDD")
        draw.text((tx - 12, y + 6), f"{10.0 ** power:g}", fill="#555555", font=small)
    draw.text((label_w, y + 26), "ratio measured / baseline (log scale); black mark: target",
              fill="#555555", font=small)
    image.save(path)
