// Interface text of the wall map: zh-CN first, English on the toggle.
// Elements with data-i18n="key" get their text from the current language;
// WanggeI18n.t(key) answers in scripts. The choice is kept in localStorage.
(function () {
  "use strict";
  const TEXT = {
    "zh-CN": {
      title: "网格 · 指挥大屏", layers: "图层", legend: "图例", figures: "关键指标", ranking: "进度落后区域",
      as_of: "日期", round: "排查轮次", round_default: "当前轮次", refresh: "刷新", back: "返回上级",
      loading: "加载中…", error: "错误", no_data: "无数据", since_yesterday: "较昨日", areas: "个区域",
      lowest: "覆盖率最低", none: "无", refreshed: "已刷新", lang: "English",
      coverage: "排查覆盖率", incomplete: "未完成户", unvisited: "未走访户", cases: "现有病例",
      quarantine: "隔离人员", quarantine_overdue: "漏测体温", fever: "发热", checkpoint_flags: "卡口预警",
      checkpoints: "卡口(点)", hexagons: "六边形(覆盖率)",
      households: "户数", visited: "已走访户", level_city: "市", level_county: "区县", level_township: "镇街",
      level_community: "村社区", level_grid: "网格", level_microgrid: "微网格", whole_map: "全部",
      checkpoints_count: "个卡口", hex_count: "个六边形",
    },
    en: {
      title: "Wangge · Command wall", layers: "Layers", legend: "Legend", figures: "Key figures", ranking: "Areas most behind",
      as_of: "Date", round: "Round", round_default: "Round in progress", refresh: "Refresh", back: "Up a level",
      loading: "Loading…", error: "Error", no_data: "no data", since_yesterday: "since yesterday", areas: "areas",
      lowest: "lowest coverage", none: "none", refreshed: "Refreshed", lang: "中文",
      coverage: "Coverage", incomplete: "Incomplete", unvisited: "Unvisited", cases: "Active cases",
      quarantine: "Under quarantine", quarantine_overdue: "Overdue checks", fever: "Fever", checkpoint_flags: "Checkpoint flags",
      checkpoints: "Checkpoints (points)", hexagons: "Hexagons (coverage)",
      households: "Households", visited: "Visited", level_city: "city", level_county: "county", level_township: "township",
      level_community: "community", level_grid: "grid", level_microgrid: "micro-grid", whole_map: "All",
      checkpoints_count: "checkpoints", hex_count: "hexagons",
    },
  };
  const KEY = "wangge.lang";
  let lang = (() => { try { return localStorage.getItem(KEY) || "zh-CN"; } catch (e) { return "zh-CN"; } })();
  if (!TEXT[lang]) lang = "zh-CN";
  const listeners = [];

  function t(key) { return (TEXT[lang] && TEXT[lang][key]) || TEXT["zh-CN"][key] || key; }
  function apply(root) {
    (root || document).querySelectorAll("[data-i18n]").forEach((el) => { el.textContent = t(el.dataset.i18n); });
    document.documentElement.lang = lang;
  }
  function set(next) {
    if (!TEXT[next]) return;
    lang = next;
    try { localStorage.setItem(KEY, lang); } catch (e) { /* private mode */ }
    apply();
    listeners.forEach((fn) => fn(lang));
  }
  window.WanggeI18n = {
    t, apply, set,
    get lang() { return lang; },
    toggle() { set(lang === "zh-CN" ? "en" : "zh-CN"); },
    onChange(fn) { listeners.push(fn); },
  };
})();
