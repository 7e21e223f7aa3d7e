"""The situation map: a standalone HTML page made with folium that opens with no network.

folium's page loads Leaflet, jQuery, Bootstrap and Font Awesome from CDNs;
this page loads nothing: no tiles, no external script or stylesheet —
Leaflet's JS and CSS (given by the caller, read from the vendored copy) are
inlined, and its CSS's images become data: URIs. A coverage choropleth of the
areas, with tooltips (name and figures) and a legend, and the figures table
under it.
"""

from __future__ import annotations

import base64
import html
import re
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import folium
import shapely
from branca.element import Element, Figure, MacroElement
from jinja2 import Template

from geo.classify import Legend
from geo.daily_report import LEVEL_NAMES, REPORT_TITLE, DailyReport

SITUATION_TITLE = "疫情防控网格化态势图"


def inline_css_images(css: str, *, read_image: Callable[[str], bytes | None]) -> str:
    """``url(images/x.png)`` → ``url(data:image/png;base64,…)`` (any image
    ``read_image`` finds; others are left as they are)."""

    def replace(match: re.Match[str]) -> str:
        path = match.group(1).strip("'\"")
        data = read_image(path)
        if data is None:
            return match.group(0)
        return f"url(data:image/png;base64,{base64.b64encode(data).decode('ascii')})"

    return re.sub(r"url\(([^)]+\.png)\)", replace, css)


def _script(code: str) -> str:
    return "<script>" + code.replace("</script", "<\\/script") + "</script>"


class _Legend(MacroElement):
    """A Leaflet control in the map's bottom-right corner holding ``legend_html``."""

    _template = Template(
        """
        {% macro script(this, kwargs) %}
        (function () {
            var legend = L.control({position: "bottomright"});
            legend.onAdd = function () {
                var div = L.DomUtil.create("div", "situation-legend");
                div.innerHTML = {{ this.legend_html|tojson }};
                return div;
            };
            legend.addTo({{ this._parent.get_name() }});
        })();
        {% endmacro %}
        """
    )

    def __init__(self, legend_html: str) -> None:
        super().__init__()  # type: ignore[no-untyped-call]
        self._name = "SituationLegend"
        self.legend_html = legend_html


def legend_html(legend: Legend, *, title: str) -> str:
    items = [
        f'<div><i style="background:{html.escape(c.colour)}"></i>{html.escape(c.label)}'
        f" <span>({c.count})</span></div>"
        for c in (*legend.classes, legend.no_data)
    ]
    return f"<b>{html.escape(title)}</b>" + "".join(items)


_PAGE_CSS = """
html, body { margin: 0; height: auto !important; font-family: "Noto Sans CJK SC", "Microsoft YaHei",
  "PingFang SC", sans-serif; }
body { display: flex; flex-direction: column; }
#situation-title { order: 0; padding: 8px 16px; }
#situation-title h1 { font-size: 22px; margin: 4px 0; }
#situation-title p { margin: 2px 0; color: #444; }
.folium-map { order: 1; }
#situation-figures { order: 2; padding: 8px 16px 24px; }
#situation-figures table { border-collapse: collapse; font-size: 13px; }
#situation-figures th, #situation-figures td { border: 1px solid #999; padding: 3px 8px; }
#situation-figures td.n { text-align: right; font-variant-numeric: tabular-nums; }
#situation-figures tr.total td { font-weight: bold; background: #fff2cc; }
#situation-figures th { background: #ddebf7; }
.swatch { display: inline-block; width: 12px; height: 12px; border: 1px solid #666; }
.situation-legend { background: #fff; padding: 6px 10px; border-radius: 4px;
  box-shadow: 0 0 6px rgba(0,0,0,.3); line-height: 20px; font-size: 13px; }
.situation-legend i { display: inline-block; width: 16px; height: 14px; margin-right: 6px;
  vertical-align: middle; border: 1px solid #666; }
"""

_TABLE_COLUMNS: tuple[tuple[str, str], ...] = (
    ("总户数 Households", "households"),
    ("应排查 In round", "round_households"),
    ("已走访 Visited", "visited"),
    ("已完成 Complete", "complete"),
    ("未完成 Incomplete", "incomplete"),
    ("未走访 Unvisited", "unvisited"),
    ("覆盖率 Coverage", "_coverage"),
    ("隔离 Quarantined", "quarantined"),
    ("漏测 Overdue", "overdue_checks"),
    ("发热 Fever", "fever"),
    ("现有病例 Cases", "active_cases"),
    ("卡口预警 Flags", "flagged_passages"),
)


def _figures_table(report: DailyReport, *, colours: Mapping[str, str]) -> str:
    head = "".join(f"<th>{html.escape(label)}</th>" for label, _ in _TABLE_COLUMNS)
    lines = [
        '<div id="situation-figures"><h2>分区数据 Figures</h2>',
        '<table id="figures-table"><thead><tr><th></th><th>层级 Level</th><th>编码 Code</th>'
        f"<th>名称 Area</th>{head}</tr></thead><tbody>",
    ]
    for row in (*report.rows, report.total):
        total = row is report.total
        cells = []
        for _label, attribute in _TABLE_COLUMNS:
            if attribute == "_coverage":
                pct = row.coverage_pct
                text = "—" if pct is None else f"{pct:.1f}%"
            else:
                text = f"{getattr(row, attribute):,}"
            cells.append(f'<td class="n">{text}</td>')
        swatch = "" if total else (
            f'<span class="swatch" style="background:{html.escape(colours.get(row.code, "#ccc"))}">'
            "</span>"
        )  # fmt: skip
        level = "合计 Total" if total else LEVEL_NAMES.get(row.level, row.level)
        lines.append(
            f'<tr class="{"total" if total else "area"}" data-code="{html.escape(row.code)}">'
            f"<td>{swatch}</td><td>{html.escape(level)}</td><td>{html.escape(row.code)}</td>"
            f"<td>{html.escape(row.name)}</td>{''.join(cells)}</tr>"
        )
    lines.append("</tbody></table></div>")
    return "".join(lines)


def situation_html(
    *,
    report: DailyReport,
    features: Sequence[Mapping[str, Any]],
    legend: Legend,
    leaflet_js: str,
    leaflet_css: str,
) -> str:
    """The page: ``features`` are GeoJSON features (WGS84) of the mapped areas
    whose properties hold ``code``, ``name``, ``colour`` and the figures the
    tooltip shows; ``report`` gives the title and the table (its rows: the
    mapped areas)."""
    figure = Figure(title=f"{report.within_name}{SITUATION_TITLE} {report.as_of.isoformat()}")
    figure.header.add_child(Element(f"<style>{leaflet_css}</style>"), name="leaflet_css")
    figure.header.add_child(Element(_script(leaflet_js)), name="leaflet_js")
    figure.header.add_child(Element(f"<style>{_PAGE_CSS}</style>"), name="page_css")

    round_text = "无排查轮次 No screening round"
    if report.round_name is not None and report.round_dates is not None:
        start, end = report.round_dates
        round_text = (
            f"排查轮次 Round：{report.round_name}（{start.isoformat()} 至 {end.isoformat()}）"
        )
    total = report.total
    pct = total.coverage_pct
    figure.html.add_child(
        Element(
            '<div id="situation-title">'
            f"<h1>{html.escape(report.within_name)}{SITUATION_TITLE}</h1>"
            f"<p>统计日期 Date：{report.as_of.isoformat()} · {html.escape(round_text)}</p>"
            f"<p>排查覆盖率 Coverage：{'—' if pct is None else f'{pct:.1f}%'}"
            f"（已完成 {total.complete:,} / 应排查 {total.round_households:,} 户）"
            f" · 现有病例 {total.active_cases:,} · 隔离 {total.quarantined:,}"
            f" · 发热 {total.fever:,} · 卡口预警 {total.flagged_passages:,}</p>"
            f"<p>{html.escape(REPORT_TITLE)}配图 · 仅含汇总数字 Aggregates only</p></div>"
        ),
        name="situation_title",
    )

    fmap = folium.Map(
        location=None, tiles=None, height=620, zoom_control=True, attribution_control=False
    )
    # Everything folium would load from a CDN is dropped; Leaflet is inlined above.
    fmap.default_js = []
    fmap.default_css = []
    figure.add_child(fmap)
    collection = {"type": "FeatureCollection", "features": list(features)}
    # folium refuses tooltip fields on an empty collection: with no area (a
    # date before any boundary) the page shows the empty table and legend only.
    if features:
        _add_areas(fmap, collection)
    bounds = _bounds(features)
    if bounds is not None:
        fmap.fit_bounds(bounds)
    fmap.add_child(_Legend(legend_html(legend, title="排查覆盖率 Coverage")))

    colours = {str(f["properties"]["code"]): str(f["properties"]["colour"]) for f in features}
    figure.html.add_child(Element(_figures_table(report, colours=colours)), name="figures")
    return str(figure.render())


def _add_areas(fmap: folium.Map, collection: dict[str, Any]) -> None:
    folium.GeoJson(
        collection,
        name="coverage",
        style_function=lambda f: {
            "fillColor": f["properties"]["colour"], "color": "#333333", "weight": 1,
            "fillOpacity": 0.75,
        },
        highlight_function=lambda _f: {"weight": 3, "color": "#000000"},
        tooltip=folium.GeoJsonTooltip(
            fields=["name", "code", "coverage_text", "complete", "round_households",
                    "active_cases", "quarantined"],
            aliases=["名称", "编码", "覆盖率 Coverage", "已完成 Complete", "应排查 In round",
                     "现有病例 Cases", "隔离 Quarantined"],
            sticky=True,
        ),
    ).add_to(fmap)  # fmt: skip


def _bounds(features: Sequence[Mapping[str, Any]]) -> list[list[float]] | None:
    shapes = [shapely.geometry.shape(f["geometry"]) for f in features if f.get("geometry")]
    if not shapes:
        return None
    min_lon, min_lat, max_lon, max_lat = shapely.total_bounds(shapes)
    return [[float(min_lat), float(min_lon)], [float(max_lat), float(max_lon)]]
