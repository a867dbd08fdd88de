// The CalSim3 network viewer: a MapLibre map over this server's style (/styles/calsim.json) with
// popups, an upstream/downstream trace driven by /network/nodes/{code}/{direction}, a search box
// over /api/search, layer toggles and a legend read from the style itself.
//
// For tests and the console it exposes `window.map` (the maplibregl.Map), `window.viewerReady`
// (a promise that settles once the map has loaded and taken its first view),
// `window.highlightNode(shortCode, direction, depth)` (what a click on a node does) and
// `window.lastHighlight` (the last trace), and `window.viewerErrors` (every error the status line
// showed). Every failure is shown on the status line, and an error event of the map is logged on
// the console too; nothing here lets an error escape uncaught.
'use strict';

(function () {
  const SOURCE = 'calsim';
  const STYLE_URL = '/styles/calsim.json';
  const TILEJSON_URL = '/tiles/demand_units,arcs,nodes.json';
  const CALIFORNIA = [[-124.5, 32.5], [-114.1, 42.0]];
  const DIRECTIONS = ['upstream', 'downstream', 'both'];

  // Style layers behind each toggle of the panel.
  const LAYER_GROUPS = {
    demand_units: ['demand_units-fill', 'demand_units-outline'],
    arcs: ['arcs-highlight', 'arcs', 'arcs-direction'],
    nodes: ['nodes-highlight', 'nodes'],
    labels: ['demand_units-labels', 'river-labels', 'node-labels', 'reservoir-labels-major', 'reservoir-labels'],
  };

  // Layers that answer the pointer, most specific first.
  const INTERACTIVE = ['nodes', 'arcs', 'demand_units-fill'];

  // Words for the legend; the colours come from the style.
  const NODE_TYPES = {
    STR: 'Reservoir (size: capacity)',
    CH: 'Channel node',
    PR: 'Project demand',
    NP: 'Non-project demand',
    S: 'Settlement contractor',
    X: 'Exchange contractor',
    OM: 'Off-model demand',
    WTP: 'Water treatment plant',
    WWTP: 'Wastewater plant',
    RFS: 'Return-flow split',
    PS: 'Pumping plant',
  };
  const ARC_TYPES = {
    CH: 'Channel',
    D: 'Diversion',
    RT: 'Return flow',
    SP: 'Spill / bypass',
    DD: 'DD',
    '': 'Other / none',
  };
  const DEMAND_KINDS = { urban: 'Urban', refuge: 'Refuge' };
  const TRACE_STATES = { origin: 'Traced node', upstream: 'Upstream', downstream: 'Downstream' };

  const $ = (id) => document.getElementById(id);
  const ui = {
    status: $('status'),
    search: $('search'),
    results: $('search-results'),
    direction: $('direction'),
    depth: $('depth'),
    clear: $('clear'),
    summary: $('trace-summary'),
  };

  window.viewerErrors = [];
  window.lastHighlight = null;

  // ---------------------------------------------------------------- status line

  function setStatus(text, isError) {
    if (!ui.status) return;
    ui.status.textContent = text;
    ui.status.classList.toggle('error', Boolean(isError));
    if (isError) window.viewerErrors.push(text);
  }

  function describe(err) {
    if (!err) return 'unknown error';
    if (err.name === 'AbortError') return 'cancelled';
    return err.message || String(err);
  }

  // GET a JSON document of this server; a failure becomes an Error whose message is the
  // problem+json title and detail when the server sent one.
  async function fetchJson(url, options) {
    let response;
    try {
      response = await fetch(url, Object.assign({ headers: { Accept: 'application/json' } }, options));
    } catch (err) {
      if (err && err.name === 'AbortError') throw err;
      throw new Error(`network error fetching ${url}`);
    }
    if (!response.ok) {
      let detail = `${response.status} ${response.statusText}`.trim();
      try {
        const problem = await response.json();
        if (problem && (problem.detail || problem.title)) {
          detail = `${response.status}: ${problem.detail || problem.title}`;
        }
      } catch (_) {
        // not JSON: keep the status line
      }
      throw new Error(detail);
    }
    try {
      return await response.json();
    } catch (_) {
      throw new Error(`${url} did not answer JSON`);
    }
  }

  // ---------------------------------------------------------------- the map

  if (typeof maplibregl === 'undefined') {
    setStatus('MapLibre did not load (/web/node_modules/maplibre-gl is missing: run npm ci in web/).', true);
    window.viewerReady = Promise.resolve(false);
    window.highlightNode = async () => null;
    return;
  }

  let map;
  try {
    map = new maplibregl.Map({
      container: 'map',
      style: STYLE_URL,
      bounds: CALIFORNIA,
      fitBoundsOptions: { padding: 20 },
      hash: false,
      attributionControl: { compact: true },
      cooperativeGestures: false,
    });
  } catch (err) {
    setStatus(`The map could not start: ${describe(err)}`, true);
    window.viewerReady = Promise.resolve(false);
    window.highlightNode = async () => null;
    return;
  }
  window.map = map;
  map.addControl(new maplibregl.NavigationControl({ visualizePitch: false }), 'top-right');
  map.addControl(new maplibregl.ScaleControl({ unit: 'metric' }), 'bottom-right');

  // Errors of the map (a tile, a glyph, the style) go to the console and the status line.
  map.on('error', (event) => {
    const err = event && event.error;
    const message = describe(err);
    console.error(`Map error: ${message}`, err || event);
    setStatus(`Map: ${message}`, true);
  });

  const tileJson = fetchJson(TILEJSON_URL).catch((err) => {
    setStatus(`Could not read the tile metadata: ${describe(err)}`, true);
    return null;
  });

  const loaded = new Promise((resolve) => {
    if (map.loaded()) resolve();
    else map.once('load', resolve);
  });

  window.viewerReady = (async () => {
    try {
      await loaded;
      const tj = await tileJson;
      const b = tj && Array.isArray(tj.bounds) && tj.bounds.length === 4 ? tj.bounds : null;
      if (b && b.every(Number.isFinite) && b[0] < b[2] && b[1] < b[3]) {
        map.fitBounds([[b[0], b[1]], [b[2], b[3]]], { padding: 30, animate: false });
      }
      buildLegend();
      wireLayerToggles();
      setStatus('Ready. Click a node to trace its network.');
      return true;
    } catch (err) {
      setStatus(`The map did not finish loading: ${describe(err)}`, true);
      return false;
    }
  })();

  // ---------------------------------------------------------------- legend and toggles

  // The [value, colour] pairs of a style `match` expression (`["match", input, v, c, ..., fallback]`).
  function matchPairs(expr) {
    const pairs = [];
    if (!Array.isArray(expr) || expr[0] !== 'match') return pairs;
    for (let i = 2; i + 1 < expr.length; i += 2) {
      const labels = Array.isArray(expr[i]) ? expr[i] : [expr[i]];
      labels.forEach((label) => pairs.push([String(label), expr[i + 1]]));
    }
    pairs.push(['', expr[expr.length - 1]]);
    return pairs;
  }

  function legendItem(list, colour, shape, code, text) {
    const li = document.createElement('li');
    const swatch = document.createElement('span');
    swatch.className = `swatch ${shape}`;
    swatch.style.background = typeof colour === 'string' ? colour : '#999';
    li.appendChild(swatch);
    if (code) {
      const c = document.createElement('span');
      c.className = 'code';
      c.textContent = code;
      li.appendChild(c);
    }
    const t = document.createElement('span');
    t.textContent = text;
    li.appendChild(t);
    list.appendChild(li);
  }

  function buildLegend() {
    const paint = (layer, prop) => {
      try {
        return map.getPaintProperty(layer, prop);
      } catch (_) {
        return undefined;
      }
    };
    const nodes = $('legend-nodes');
    const arcs = $('legend-arcs');
    const demand = $('legend-demand');
    const trace = $('legend-trace');
    [nodes, arcs, demand, trace].forEach((el) => el && el.replaceChildren());
    matchPairs(paint('nodes', 'circle-color')).forEach(([code, colour]) => {
      if (code && NODE_TYPES[code]) legendItem(nodes, colour, 'dot', code, NODE_TYPES[code]);
    });
    matchPairs(paint('arcs', 'line-color')).forEach(([code, colour]) => {
      if (code in ARC_TYPES) legendItem(arcs, colour, 'line', code || '—', ARC_TYPES[code]);
    });
    matchPairs(paint('demand_units-fill', 'fill-color')).forEach(([code, colour]) => {
      if (DEMAND_KINDS[code]) legendItem(demand, colour, 'area', '', DEMAND_KINDS[code]);
    });
    matchPairs(paint('nodes-highlight', 'circle-color')).forEach(([code, colour]) => {
      if (TRACE_STATES[code]) legendItem(trace, colour, 'dot', '', TRACE_STATES[code]);
    });
  }

  function wireLayerToggles() {
    document.querySelectorAll('input[data-layer-group]').forEach((box) => {
      const apply = () => {
        const layers = LAYER_GROUPS[box.dataset.layerGroup] || [];
        layers.forEach((id) => {
          if (map.getLayer(id)) {
            map.setLayoutProperty(id, 'visibility', box.checked ? 'visible' : 'none');
          }
        });
      };
      box.addEventListener('change', () => {
        try {
          apply();
        } catch (err) {
          setStatus(`Could not change the layer: ${describe(err)}`, true);
        }
      });
      apply();
    });
  }

  // ---------------------------------------------------------------- popups

  const hoverPopup = new maplibregl.Popup({
    closeButton: false,
    closeOnClick: false,
    className: 'hover-popup',
    offset: 10,
    maxWidth: '300px',
  });
  let clickPopup = null;
  let clickedKey = null; // layer and id of the feature whose click popup is open

  const LAYER_KIND = { nodes: 'node', arcs: 'arc', 'demand_units-fill': 'demand unit' };

  // A reservoir name short enough for a title: the whole name, or its first sentence (the
  // data sometimes appends gauge notes), as the style's labels do.
  function shortName(name) {
    const text = String(name || '').trim();
    if (text.length <= 36) return text;
    const dot = text.indexOf('. ');
    return dot > 0 && dot <= 36 ? text.slice(0, dot) : '';
  }

  function featureTitle(kind, p) {
    if (kind === 'demand unit') return p.name || p.du_id || `demand unit ${p.id}`;
    const code = p.short_code || `${kind} ${p.id}`;
    const extra = shortName(p.reservoir_name) || (p.name && p.name !== p.short_code ? shortName(p.name) : '');
    return extra ? `${code} — ${extra}` : code;
  }

  function featureSubtitle(kind, p) {
    if (kind === 'node') return ['node', p.node_type, NODE_TYPES[p.node_type]].filter(Boolean).join(' · ');
    if (kind === 'arc') {
      const type = p.arc_type || '';
      const flow = p.from_node && p.to_node ? `${p.from_node} → ${p.to_node}` : '';
      return ['arc', type, ARC_TYPES[type], flow].filter(Boolean).join(' · ');
    }
    return ['demand unit', p.kind].filter(Boolean).join(' · ');
  }

  function formatValue(v) {
    if (typeof v === 'number') {
      return Number.isInteger(v) ? v.toLocaleString('en-US') : v.toLocaleString('en-US', { maximumFractionDigits: 3 });
    }
    if (typeof v === 'object') return JSON.stringify(v);
    return String(v);
  }

  // Hover lists at most this many properties, each cut to HOVER_TEXT characters.
  const HOVER_ROWS = 14;
  const HOVER_TEXT = 80;
  // Properties the hover list leaves out: the title already shows them.
  const HOVER_SKIP = ['id', 'short_code'];

  // A table of the non-empty properties; `compact` (hover) drops the title's own fields, cuts
  // long values and lists at most HOVER_ROWS, saying how many more a click shows.
  function propsTable(props, compact) {
    const table = document.createElement('table');
    table.className = 'popup-props';
    const keys = Object.keys(props).filter((key) => {
      const value = props[key];
      if (value === null || value === undefined || value === '') return false;
      return !(compact && HOVER_SKIP.includes(key));
    });
    const shown = compact ? keys.slice(0, HOVER_ROWS) : keys;
    shown.forEach((key) => {
      let text = formatValue(props[key]);
      if (compact && text.length > HOVER_TEXT) text = `${text.slice(0, HOVER_TEXT - 1)}…`;
      const tr = document.createElement('tr');
      const th = document.createElement('th');
      th.textContent = key;
      const td = document.createElement('td');
      td.textContent = text;
      tr.append(th, td);
      table.appendChild(tr);
    });
    if (shown.length < keys.length) {
      const tr = document.createElement('tr');
      const td = document.createElement('td');
      td.colSpan = 2;
      td.textContent = `${keys.length - shown.length} more: click for all.`;
      tr.appendChild(td);
      table.appendChild(tr);
    }
    return table;
  }

  // A popup's content: title, kind and properties; `withActions` (the click popup) lists every
  // property in a scroll box and adds the trace buttons of a node, hover a compact list.
  function popupContent(kind, props, withActions) {
    const root = document.createElement('div');
    const title = document.createElement('div');
    title.className = 'popup-title';
    title.textContent = featureTitle(kind, props);
    root.appendChild(title);
    const sub = document.createElement('div');
    sub.className = 'popup-kind';
    sub.textContent = featureSubtitle(kind, props);
    root.appendChild(sub);
    if (!withActions) {
      root.appendChild(propsTable(props, true));
      return root;
    }

    const scroll = document.createElement('div');
    scroll.className = 'popup-scroll';
    scroll.appendChild(propsTable(props, false));
    root.appendChild(scroll);

    if (kind === 'node' && props.short_code) {
      const actions = document.createElement('div');
      actions.className = 'popup-actions';
      DIRECTIONS.forEach((direction) => {
        const button = document.createElement('button');
        button.type = 'button';
        button.textContent = direction === 'both' ? 'Both ways' : direction[0].toUpperCase() + direction.slice(1);
        button.addEventListener('click', () => {
          ui.direction.value = direction;
          highlightNode(props.short_code, direction);
        });
        actions.appendChild(button);
      });
      root.appendChild(actions);
    }
    return root;
  }

  function showClickPopup(lngLat, kind, props) {
    if (clickPopup) clickPopup.remove();
    const popup = new maplibregl.Popup({ closeButton: true, closeOnClick: true, maxWidth: '340px', offset: 8 })
      .setLngLat(lngLat)
      .setDOMContent(popupContent(kind, props, true))
      .addTo(map);
    popup.on('close', () => {
      if (clickPopup === popup) {
        clickPopup = null;
        clickedKey = null;
      }
    });
    clickPopup = popup;
    clickedKey = `${kind}:${props.id}`;
    hoverPopup.remove();
  }

  // The most specific feature near a screen point, with the layer that drew it.
  function pick(point) {
    const pad = 4;
    const box = [[point.x - pad, point.y - pad], [point.x + pad, point.y + pad]];
    const layers = INTERACTIVE.filter((id) => map.getLayer(id) && map.getLayoutProperty(id, 'visibility') !== 'none');
    if (layers.length === 0) return null;
    const features = map.queryRenderedFeatures(box, { layers });
    for (const id of INTERACTIVE) {
      const f = features.find((feature) => feature.layer.id === id);
      if (f) return { feature: f, kind: LAYER_KIND[id] };
    }
    return null;
  }

  let hoverFrame = 0;
  let hoverPoint = null;
  map.on('mousemove', (event) => {
    hoverPoint = event.point;
    if (hoverFrame) return;
    hoverFrame = requestAnimationFrame(() => {
      hoverFrame = 0;
      try {
        const hit = hoverPoint && pick(hoverPoint);
        map.getCanvas().style.cursor = hit ? 'pointer' : '';
        const props = hit ? hit.feature.properties || {} : null;
        // No hover label over the feature whose full popup is open.
        if (!hit || (clickPopup && clickedKey === `${hit.kind}:${props.id}`)) {
          hoverPopup.remove();
          return;
        }
        hoverPopup
          .setLngLat(map.unproject(hoverPoint))
          .setDOMContent(popupContent(hit.kind, props, false))
          .addTo(map);
      } catch (_) {
        hoverPopup.remove();
      }
    });
  });
  map.on('mouseout', () => {
    hoverPoint = null;
    hoverPopup.remove();
    map.getCanvas().style.cursor = '';
  });

  map.on('click', (event) => {
    try {
      const hit = pick(event.point);
      if (!hit) return;
      hoverPopup.remove();
      const props = hit.feature.properties || {};
      showClickPopup(event.lngLat, hit.kind, props);
      if (hit.kind === 'node' && props.short_code) {
        highlightNode(props.short_code);
      }
    } catch (err) {
      setStatus(`Click failed: ${describe(err)}`, true);
    }
  });

  // ---------------------------------------------------------------- trace

  let traceToken = 0;

  function clearHighlight() {
    try {
      map.removeFeatureState({ source: SOURCE, sourceLayer: 'nodes' });
      map.removeFeatureState({ source: SOURCE, sourceLayer: 'arcs' });
    } catch (_) {
      // the source is not there yet: nothing to clear
    }
  }

  // The depth asked in the panel: null for unlimited, a whole number 1..1000, or undefined when
  // the field holds something else.
  function panelDepth() {
    const raw = ui.depth.value.trim();
    if (raw === '') return null;
    const n = Number(raw);
    return Number.isInteger(n) && n >= 1 && n <= 1000 ? n : undefined;
  }

  function renderSummary(h) {
    ui.summary.replaceChildren();
    if (!h) return;
    const parts = [];
    if (h.upstream !== null) parts.push(['upstream', h.upstream, h.upstreamArcs]);
    if (h.downstream !== null) parts.push(['downstream', h.downstream, h.downstreamArcs]);
    const head = document.createElement('div');
    head.textContent = `${h.origin}${h.depth ? ` (depth ≤ ${h.depth})` : ''}:`;
    ui.summary.appendChild(head);
    const colours = {};
    matchPairs(map.getPaintProperty('nodes-highlight', 'circle-color')).forEach(([k, c]) => {
      colours[k] = c;
    });
    parts.forEach(([direction, nodes, arcs]) => {
      const line = document.createElement('div');
      const swatch = document.createElement('span');
      swatch.className = 'swatch';
      swatch.style.background = colours[direction] || '#999';
      line.appendChild(swatch);
      line.appendChild(document.createTextNode(`${nodes} nodes, ${arcs} arcs ${direction} (the node itself included)`));
      ui.summary.appendChild(line);
    });
  }

  // Highlights what lies upstream and/or downstream of a node, as a click on it does.
  // direction: 'upstream' | 'downstream' | 'both' (default: the panel's choice);
  // depth: a whole number 1..1000, or null for unlimited (default: the panel's choice).
  // Resolves to the new window.lastHighlight, or null when it failed or was superseded.
  async function highlightNode(shortCode, direction, depth) {
    const token = ++traceToken;
    try {
      const code = String(shortCode || '').trim();
      if (!code) throw new Error('no node given');
      const dir = direction === undefined || direction === null || direction === '' ? ui.direction.value : String(direction);
      if (!DIRECTIONS.includes(dir)) throw new Error(`direction must be upstream, downstream or both; got ${dir}`);
      let maxDepth = depth === undefined ? panelDepth() : depth;
      if (maxDepth !== null) {
        maxDepth = Number(maxDepth);
        if (!Number.isInteger(maxDepth) || maxDepth < 1 || maxDepth > 1000) {
          throw new Error('depth must be a whole number from 1 to 1000, or empty for unlimited');
        }
      }
      setStatus(`Tracing ${dir} from ${code}…`);
      await window.viewerReady;

      const ways = dir === 'both' ? ['upstream', 'downstream'] : [dir];
      const query = maxDepth === null ? '' : `?max_depth=${maxDepth}`;
      const answers = await Promise.all(
        ways.map((way) => fetchJson(`/network/nodes/${encodeURIComponent(code)}/${way}${query}`)),
      );
      if (token !== traceToken) return null;

      clearHighlight();
      const nodeState = new Map();
      const arcState = new Map();
      let origin = null;
      const result = { upstream: null, downstream: null, upstreamArcs: null, downstreamArcs: null };
      answers.forEach((answer, i) => {
        const way = ways[i];
        origin = answer.origin || origin;
        result[way] = Number.isFinite(answer.node_count) ? answer.node_count : (answer.nodes || []).length;
        result[`${way}Arcs`] = Number.isFinite(answer.arc_count) ? answer.arc_count : (answer.arcs || []).length;
        (answer.nodes || []).forEach((n) => {
          // A node on a cycle lies both ways; downstream, traced last, names it.
          if (Number.isFinite(n.id)) nodeState.set(n.id, way);
        });
        (answer.arcs || []).forEach((a) => {
          if (Number.isFinite(a.id)) arcState.set(a.id, way);
        });
      });
      if (origin && Number.isFinite(origin.id)) nodeState.set(origin.id, 'origin');

      nodeState.forEach((state, id) => {
        map.setFeatureState({ source: SOURCE, sourceLayer: 'nodes', id }, { highlight: state });
      });
      arcState.forEach((state, id) => {
        map.setFeatureState({ source: SOURCE, sourceLayer: 'arcs', id }, { highlight: state });
      });

      const highlight = {
        origin: (origin && origin.short_code) || code,
        originId: origin ? origin.id : null,
        originName: origin ? origin.name : null,
        direction: dir,
        depth: maxDepth,
        upstream: result.upstream,
        downstream: result.downstream,
        upstreamArcs: result.upstreamArcs,
        downstreamArcs: result.downstreamArcs,
        ids: Array.from(nodeState.keys()),
        arcIds: Array.from(arcState.keys()),
      };
      window.lastHighlight = highlight;
      renderSummary(highlight);
      ui.clear.disabled = false;
      const counts = ways.map((way) => `${highlight[way]} ${way}`).join(', ');
      setStatus(`Traced ${highlight.origin}: ${counts} nodes.`);
      return highlight;
    } catch (err) {
      if (token === traceToken) {
        setStatus(`Could not trace ${shortCode}: ${describe(err)}`, true);
      }
      return null;
    }
  }

  window.highlightNode = highlightNode;

  function retrace() {
    const last = window.lastHighlight;
    if (!last) return;
    const depth = panelDepth();
    if (depth === undefined) {
      setStatus('Depth must be a whole number from 1 to 1000, or empty for unlimited.', true);
      return;
    }
    highlightNode(last.origin, ui.direction.value, depth);
  }

  ui.direction.addEventListener('change', retrace);
  ui.depth.addEventListener('change', retrace);
  ui.clear.addEventListener('click', () => {
    traceToken += 1;
    clearHighlight();
    window.lastHighlight = null;
    renderSummary(null);
    ui.clear.disabled = true;
    setStatus('Trace cleared.');
  });

  // ---------------------------------------------------------------- search

  let searchTimer = 0;
  let searchAbort = null;
  let results = [];
  let active = -1;

  function hideResults() {
    ui.results.hidden = true;
    ui.results.replaceChildren();
    ui.search.setAttribute('aria-expanded', 'false');
    results = [];
    active = -1;
  }

  function setActive(i) {
    const items = ui.results.querySelectorAll('li[role="option"]');
    if (items.length === 0) return;
    active = (i + items.length) % items.length;
    items.forEach((li, j) => li.setAttribute('aria-selected', j === active ? 'true' : 'false'));
    items[active].scrollIntoView({ block: 'nearest' });
  }

  function renderResults(list, total) {
    ui.results.replaceChildren();
    results = list;
    active = -1;
    if (list.length === 0) {
      const li = document.createElement('li');
      li.className = 'empty';
      li.textContent = 'No node or arc matches.';
      ui.results.appendChild(li);
    }
    list.forEach((r, i) => {
      const li = document.createElement('li');
      li.setAttribute('role', 'option');
      li.setAttribute('aria-selected', 'false');
      const kind = document.createElement('span');
      kind.className = 'kind';
      kind.textContent = r.type;
      const code = document.createElement('span');
      code.className = 'code';
      code.textContent = r.short_code || `#${r.id}`;
      li.append(kind, code);
      if (r.name && r.name !== r.short_code) li.append(document.createTextNode(` ${r.name}`));
      if (r.description) {
        const desc = document.createElement('span');
        desc.className = 'desc';
        desc.textContent = r.description;
        li.appendChild(desc);
      }
      // mousedown, not click: it comes before the input's blur hides the list.
      li.addEventListener('mousedown', (event) => {
        event.preventDefault();
        choose(i);
      });
      ui.results.appendChild(li);
    });
    if (total > list.length) {
      const li = document.createElement('li');
      li.className = 'empty';
      li.textContent = `${total - list.length} more: type more to narrow.`;
      ui.results.appendChild(li);
    }
    ui.results.hidden = false;
    ui.search.setAttribute('aria-expanded', 'true');
  }

  async function runSearch(q) {
    if (searchAbort) searchAbort.abort();
    searchAbort = new AbortController();
    try {
      const data = await fetchJson(`/api/search?q=${encodeURIComponent(q)}&limit=10`, { signal: searchAbort.signal });
      if (ui.search.value.trim() !== q) return;
      renderResults(Array.isArray(data.results) ? data.results : [], Number(data.total) || 0);
    } catch (err) {
      if (err && err.name === 'AbortError') return;
      hideResults();
      setStatus(`Search failed: ${describe(err)}`, true);
    }
  }

  // Bounds [[w, s], [e, n]] of a GeoJSON geometry, or null.
  function geometryBounds(geometry) {
    let w = Infinity;
    let s = Infinity;
    let e = -Infinity;
    let n = -Infinity;
    const walk = (c) => {
      if (!Array.isArray(c)) return;
      if (typeof c[0] === 'number' && typeof c[1] === 'number') {
        w = Math.min(w, c[0]);
        e = Math.max(e, c[0]);
        s = Math.min(s, c[1]);
        n = Math.max(n, c[1]);
      } else {
        c.forEach(walk);
      }
    };
    if (geometry && geometry.type === 'GeometryCollection') {
      (geometry.geometries || []).forEach((g) => walk(g.coordinates));
    } else if (geometry) {
      walk(geometry.coordinates);
    }
    return Number.isFinite(w) ? [[w, s], [e, n]] : null;
  }

  async function choose(i) {
    const r = results[i];
    if (!r) return;
    hideResults();
    ui.search.value = r.short_code || ui.search.value;
    const collection = r.type === 'arc' ? 'arcs' : 'nodes';
    const kind = r.type === 'arc' ? 'arc' : 'node';
    setStatus(`Finding ${r.short_code || r.id}…`);
    try {
      const feature = await fetchJson(`/collections/${collection}/items/${encodeURIComponent(r.id)}`);
      const bounds = geometryBounds(feature && feature.geometry);
      if (!bounds) throw new Error('the feature has no geometry');
      const [[w, s], [e, n]] = bounds;
      const centre = [(w + e) / 2, (s + n) / 2];
      if (w === e && s === n) {
        map.flyTo({ center: centre, zoom: Math.max(map.getZoom(), 11), essential: true });
      } else {
        map.fitBounds(bounds, { padding: 80, maxZoom: 13, essential: true });
      }
      const props = Object.assign({ id: r.id }, (feature && feature.properties) || {});
      showClickPopup(centre, kind, props);
      if (kind === 'node' && props.short_code) {
        highlightNode(props.short_code);
      } else {
        setStatus(`Showing ${r.short_code || r.id}.`);
      }
    } catch (err) {
      setStatus(`Could not show ${r.short_code || r.id}: ${describe(err)}`, true);
    }
  }

  ui.search.addEventListener('input', () => {
    clearTimeout(searchTimer);
    const q = ui.search.value.trim();
    if (q.length < 2) {
      if (searchAbort) searchAbort.abort();
      hideResults();
      return;
    }
    searchTimer = setTimeout(() => runSearch(q), 200);
  });

  ui.search.addEventListener('keydown', (event) => {
    if (event.key === 'ArrowDown') {
      event.preventDefault();
      setActive(active + 1);
    } else if (event.key === 'ArrowUp') {
      event.preventDefault();
      setActive(active - 1);
    } else if (event.key === 'Enter') {
      event.preventDefault();
      if (results.length > 0) choose(active >= 0 ? active : 0);
    } else if (event.key === 'Escape') {
      hideResults();
    }
  });

  ui.search.addEventListener('blur', () => {
    setTimeout(hideResults, 150);
  });

  // Anything that still slips through is shown, not lost.
  window.addEventListener('unhandledrejection', (event) => {
    event.preventDefault();
    setStatus(`Unexpected error: ${describe(event.reason)}`, true);
  });
})();
