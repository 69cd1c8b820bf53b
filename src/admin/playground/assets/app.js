// imgforge playground: compose an image URL, see what the gateway answers, copy it.
// Plain JavaScript, no dependencies, served from the binary (src/admin/playground/).
//
// The page asks the admin listener's JSON endpoints (/playground/api/…) to sign URLs and to look
// at answers; the preview and the original load from the PUBLIC listener, whose base URL comes
// from the config (or the "Public base URL" field). Options are written in the order the official
// JavaScript client (@imgproxy/imgproxy-js-core, used by @imgproxy/imgproxy-node) writes them, so
// the snippet shown builds the very same URL.
'use strict';

(function () {
  const $ = (id) => document.getElementById(id);

  const state = {
    config: null,
    site: null,
    route: null,
    seq: 0,
    timer: 0,
    wantedPreset: null,
  };

  // Controls whose values go into the page's address (#…), so a composition can be linked.
  const CONTROLS = ['rt', 'w', 'h', 'el', 'dpr', 'g', 'fpx', 'fpy', 'cw', 'ch', 'pd', 'rot',
    'flh', 'flv', 'bgon', 'bg', 'bl', 'sh', 'q', 'f', 'pr', 'wm', 'wmo', 'wmp'];

  const publicOverride = new URLSearchParams(location.search).get('public') || '';

  // --- talking to the admin listener -------------------------------------------------------

  async function api(name, params) {
    const query = params ? '?' + new URLSearchParams(params).toString() : '';
    const resp = await fetch('/playground/api/' + name + query, {
      credentials: 'same-origin',
      headers: { Accept: 'application/json' },
      cache: 'no-store',
    });
    if (resp.status === 401) {
      // The session ended: the page itself now answers with the token form.
      location.reload();
      throw new Error('the session ended: give the admin token again');
    }
    let body;
    try {
      body = await resp.json();
    } catch (e) {
      body = { error: 'HTTP ' + resp.status };
    }
    if (!resp.ok) {
      throw new Error(body.error || 'HTTP ' + resp.status);
    }
    return body;
  }

  function problem(text) {
    const p = $('problem');
    p.textContent = text || '';
    p.hidden = !text;
  }

  // --- composing ---------------------------------------------------------------------------

  // As the gateway's query API encodes a source for plain/: everything but unreserved
  // characters and '/' is percent-encoded (UTF-8).
  function encodePlain(text) {
    let out = '';
    for (const byte of new TextEncoder().encode(text)) {
      const c = String.fromCharCode(byte);
      if (/[A-Za-z0-9\-._~/]/.test(c)) {
        out += c;
      } else {
        out += '%' + byte.toString(16).toUpperCase().padStart(2, '0');
      }
    }
    return out;
  }

  function num(id) {
    const v = parseFloat($(id).value);
    return Number.isFinite(v) && v > 0 ? v : 0;
  }

  function int(id) {
    return Math.round(num(id));
  }

  function currentSource() {
    const typed = $('source').value.trim();
    return typed || $('local').value || '';
  }

  // The options as @imgproxy/imgproxy-node takes them, the path segments they become (in that
  // library's order), and the query API form when the options fit in it.
  function compose() {
    const route = state.route;
    const o = {};
    const seg = [];
    const used = new Set();
    const onlyPresets = route && route.only_presets;
    if (!onlyPresets) {
      if ($('bgon').checked) {
        o.background = $('bg').value.replace('#', '');
        seg.push('bg:' + o.background);
        used.add('background');
      }
      if (num('bl') > 0) {
        o.blur = num('bl');
        seg.push('bl:' + o.blur);
        used.add('blur');
      }
      if (int('cw') > 0 || int('ch') > 0) {
        o.crop = { width: int('cw'), height: int('ch') };
        seg.push('c:' + o.crop.width + ':' + o.crop.height);
        used.add('crop');
      }
      const dpr = num('dpr');
      if (dpr > 0 && dpr !== 1) {
        o.dpr = dpr;
        seg.push('dpr:' + dpr);
        used.add('dpr');
      }
      if ($('flh').checked || $('flv').checked) {
        o.flip = { horizontal: $('flh').checked, vertical: $('flv').checked };
        seg.push('fl:' + (o.flip.horizontal ? 't' : 'f') + ':' + (o.flip.vertical ? 't' : 'f'));
        used.add('flip');
      }
      if ($('f').value) {
        o.format = $('f').value;
        seg.push('f:' + o.format);
      }
      const g = $('g').value;
      if (g === 'fp') {
        const x = clamp01($('fpx').value);
        const y = clamp01($('fpy').value);
        o.gravity = { type: 'fp', x: x, y: y };
        seg.push('g:fp:' + x + ':' + y);
        used.add('gravity');
      } else if (g) {
        o.gravity = { type: g };
        seg.push('g:' + g);
        used.add('gravity');
      }
      if (int('pd') > 0) {
        o.padding = int('pd');
        seg.push('pd:' + o.padding);
        used.add('padding');
      }
    }
    if ($('pr').value) {
      o.preset = [$('pr').value];
      seg.push('pr:' + $('pr').value);
      used.add('preset');
    }
    if (!onlyPresets) {
      if (int('q') > 0) {
        o.quality = int('q');
        seg.push('q:' + o.quality);
      }
      const rt = $('rt').value;
      if (rt !== 'fit' || int('w') > 0 || int('h') > 0 || $('el').checked) {
        o.resize = { resizing_type: rt, width: int('w'), height: int('h') };
        let s = 'rs:' + rt + ':' + o.resize.width + ':' + o.resize.height;
        if ($('el').checked) {
          o.resize.enlarge = true;
          s += ':t';
          used.add('enlarge');
        }
        seg.push(s);
      }
      const rot = parseInt($('rot').value, 10) || 0;
      if (rot) {
        o.rotate = rot;
        seg.push('rot:' + rot);
        used.add('rotate');
      }
      if (num('sh') > 0) {
        o.sharpen = num('sh');
        seg.push('sh:' + o.sharpen);
        used.add('sharpen');
      }
      if ($('wm').checked && route && route.watermark) {
        o.watermark = { opacity: clamp01($('wmo').value), position: $('wmp').value };
        seg.push('wm:' + o.watermark.opacity + ':' + o.watermark.position);
        used.add('watermark');
      }
    }
    let options = seg.join('/');
    if (onlyPresets) {
      options = $('pr').value;
    }

    // The query API takes url, w, h, t, q and f only.
    let query = null;
    let queryWhy = '';
    if (onlyPresets) {
      queryWhy = 'this route takes presets only, in the path form';
    } else if (used.size > 0) {
      queryWhy = 'the query API takes url, w, h, t, q and f only; this URL also uses ' +
        Array.from(used).join(', ');
    } else {
      const src = currentSource();
      const parts = ['url=' + encodeURIComponent(src)];
      if (o.resize) {
        parts.push('w=' + o.resize.width, 'h=' + o.resize.height, 't=' + o.resize.resizing_type);
      }
      if (o.quality) {
        parts.push('q=' + o.quality);
      }
      if (o.format) {
        parts.push('f=' + o.format);
      }
      query = parts.join('&');
    }
    return { o: o, options: options, query: query, queryWhy: queryWhy };
  }

  function clamp01(text) {
    const v = parseFloat(text);
    if (!Number.isFinite(v)) return 0.5;
    return Math.min(1, Math.max(0, Math.round(v * 100) / 100));
  }

  // --- the snippet -------------------------------------------------------------------------

  function snippet(base, source, o, signature) {
    const lines = [];
    lines.push('// npm install @imgproxy/imgproxy-node');
    lines.push('import { generateImageUrl } from "@imgproxy/imgproxy-node";');
    lines.push('');
    if (signature.signed) {
      lines.push('// IMGPROXY_KEY and IMGPROXY_SALT: the route\'s newest key and salt (hex),');
      lines.push('// key #' + signature.key + ' of ' + signature.keys + ' in the gateway\'s config.');
      if (signature.signature_size !== 32) {
        lines.push('// This route cuts signatures to ' + signature.signature_size +
          ' bytes; the library signs with all 32:');
        lines.push('// set signature_size = 32 on the route, or shorten the signature yourself.');
      }
    } else {
      lines.push('// This route takes unsigned URLs: leave IMGPROXY_KEY and IMGPROXY_SALT unset.');
    }
    lines.push('const url = generateImageUrl({');
    lines.push('  endpoint: ' + JSON.stringify(base) + ',');
    lines.push('  url: { value: ' + JSON.stringify(source) + ', displayAs: "plain" },');
    const opts = JSON.stringify(o, null, 2).split('\n');
    lines.push('  options: ' + opts.map((l, i) => (i ? '  ' + l : l)).join('\n') + ',');
    if (signature.signed) {
      lines.push('  key: process.env.IMGPROXY_KEY,');
      lines.push('  salt: process.env.IMGPROXY_SALT,');
    }
    lines.push('});');
    return lines.join('\n');
  }

  // --- showing -----------------------------------------------------------------------------

  function bytesText(n) {
    if (!Number.isFinite(n)) return '—';
    const grouped = String(n).replace(/\B(?=(\d{3})+(?!\d))/g, '\u202f');
    if (n < 1024) return grouped + ' B';
    return grouped + ' B (' + (n / 1024).toFixed(1) + ' KiB)';
  }

  function setFact(id, text, value) {
    const cell = $(id);
    cell.textContent = text;
    if (value === undefined) {
      delete cell.dataset.value;
    } else {
      cell.dataset.value = String(value);
    }
  }

  function clearFacts() {
    for (const id of ['fact-status', 'fact-format', 'fact-bytes', 'fact-size', 'fact-cache',
      'fact-time', 'fact-vary', 'info-format', 'info-size', 'info-bytes', 'info-alpha',
      'info-animated', 'info-orientation']) {
      setFact(id, '…');
    }
  }

  function showAnswer(answer) {
    if (answer.error) {
      setFact('fact-status', 'not looked at: ' + answer.error);
      return;
    }
    setFact('fact-status', String(answer.status) + (answer.text ? ' — ' + answer.text : ''),
      answer.status);
    setFact('fact-format', answer.format || '—', answer.format || '');
    setFact('fact-bytes', bytesText(answer.bytes), answer.bytes);
    setFact('fact-cache', answer.cache_status || '— (no cache on this route)',
      answer.cache_status || '');
    setFact('fact-vary', answer.vary || '—');
    setFact('fact-time', answer.millis + ' ms through the gateway', answer.millis);
  }

  function showInfo(info) {
    if (!info || info.error || !info.json) {
      const why = info && (info.error || info.text || ('HTTP ' + info.status));
      setFact('info-format', why ? 'not available: ' + why : '—');
      for (const id of ['info-size', 'info-bytes', 'info-alpha', 'info-animated',
        'info-orientation']) {
        setFact(id, '—');
      }
      return;
    }
    const j = info.json;
    setFact('info-format', String(j.format), j.format);
    setFact('info-size', j.width + ' × ' + j.height + (j.pages > 1 ? ' (' + j.pages + ' pages)' : ''),
      j.width + 'x' + j.height);
    setFact('info-bytes', bytesText(j.bytes), j.bytes);
    setFact('info-alpha', j.alpha ? 'yes' : 'no');
    setFact('info-animated', j.animated ? 'yes' : 'no');
    setFact('info-orientation', j.orientation ? String(j.orientation) : '—');
  }

  function load(img, url, seq, onDone) {
    img.dataset.state = 'loading';
    const started = performance.now();
    img.onload = function () {
      if (seq !== state.seq) return;
      img.dataset.state = 'loaded';
      onDone(true, performance.now() - started);
    };
    img.onerror = function () {
      if (seq !== state.seq) return;
      img.dataset.state = 'error';
      onDone(false, performance.now() - started);
    };
    img.src = url;
  }

  function baseUrl() {
    const typed = $('public').value.trim().replace(/\/+$/, '');
    return typed || (state.site && state.site.base_url) || '';
  }

  // --- the update cycle --------------------------------------------------------------------

  function schedule() {
    clearTimeout(state.timer);
    state.timer = setTimeout(update, 200);
  }

  async function update() {
    const seq = ++state.seq;
    writeHash();
    const site = state.site;
    const route = state.route;
    if (!site || !route) return;
    const src = currentSource();
    if (!src) {
      problem('Pick a local image or type a URL or path of the site\'s origin.');
      return;
    }
    const c = compose();
    const source = encodePlain(src);
    let signed;
    try {
      signed = await api('sign', {
        site: site.name,
        route: route.prefix,
        source: source,
        options: c.options,
        query: c.query || '',
      });
    } catch (e) {
      if (seq !== state.seq) return;
      problem(e.message);
      $('preview').dataset.state = 'error';
      return;
    }
    if (seq !== state.seq) return;
    problem('');
    const base = baseUrl();
    const endpoint = base + route.prefix.replace(/\/+$/, '');
    $('url-path').value = base + signed.path_url;
    $('open-path').href = base + signed.path_url;
    $('url-query').value = signed.query_url ? base + signed.query_url : '';
    $('query-note').textContent = signed.query_url ? '' : (signed.query_note || c.queryWhy);
    $('copy-query').disabled = !signed.query_url;
    $('canonical').textContent = signed.canonical;
    $('sig-note').textContent = signed.signature.signed
      ? 'Signed here with key #' + signed.signature.key + ' of ' + signed.signature.keys +
        ' (the newest), signature size ' + signed.signature.signature_size + '.'
      : 'Unsigned: this route takes unsigned URLs.';
    $('snippet').value = snippet(endpoint, source, c.o, signed.signature);
    $('info-link').href = signed.info_url ? base + signed.info_url : '';
    $('info-link').hidden = !signed.info_url;
    clearFacts();

    // The probe goes first, so its X-Cache-Status is that of the first request for the URL;
    // the <img> then loads the same URL from the public listener.
    const probes = await Promise.all([
      api('probe', { site: site.name, route: route.prefix, url: signed.path_url })
        .catch((e) => ({ error: e.message })),
      signed.info_url
        ? api('probe', { site: site.name, route: route.prefix, url: signed.info_url })
          .catch((e) => ({ error: e.message }))
        : Promise.resolve({ error: signed.original_note || 'no /info URL' }),
    ]);
    if (seq !== state.seq) return;
    showAnswer(probes[0]);
    showInfo(probes[1]);

    const preview = $('preview');
    preview.alt = 'preview of ' + src;
    load(preview, base + signed.path_url, seq, function (ok, ms) {
      if (ok) {
        setFact('fact-size', preview.naturalWidth + ' × ' + preview.naturalHeight,
          preview.naturalWidth + 'x' + preview.naturalHeight);
        const t = $('fact-time');
        t.textContent = (probes[0].millis !== undefined ? probes[0].millis + ' ms through the gateway, ' : '') +
          Math.round(ms) + ' ms in this browser';
      } else {
        setFact('fact-size', 'the browser could not show it');
      }
    });
    const original = $('original');
    original.alt = 'original ' + src;
    if (signed.original_url) {
      load(original, base + signed.original_url, seq, function (ok) {
        $('original-size').textContent = ok
          ? original.naturalWidth + ' × ' + original.naturalHeight
          : 'the browser could not show it';
      });
    } else {
      original.removeAttribute('src');
      $('original-size').textContent = signed.original_note || '';
    }
  }

  // --- the page's address ------------------------------------------------------------------

  function writeHash() {
    const p = new URLSearchParams();
    if (state.site) p.set('site', state.site.name);
    if (state.route) p.set('route', state.route.prefix);
    const src = currentSource();
    if (src) p.set('src', src);
    for (const id of CONTROLS) {
      const el = $(id);
      if (el.type === 'checkbox') {
        if (el.checked) p.set(id, '1');
      } else if (el.value !== defaultOf(el)) {
        p.set(id, el.value);
      }
    }
    history.replaceState(null, '', '#' + p.toString());
  }

  function defaultOf(el) {
    if (el.tagName === 'SELECT') {
      const d = Array.from(el.options).find((o) => o.defaultSelected) || el.options[0];
      return d ? d.value : '';
    }
    return el.defaultValue;
  }

  function readHash() {
    const p = new URLSearchParams(location.hash.replace(/^#/, ''));
    state.wantedPreset = p.get('pr');
    // What the address leaves out has its default value.
    for (const id of CONTROLS) {
      const el = $(id);
      if (el.type === 'checkbox') {
        el.checked = p.has(id) ? p.get(id) === '1' : el.defaultChecked;
      } else {
        el.value = p.has(id) ? p.get(id) : defaultOf(el);
      }
    }
    return { site: p.get('site'), route: p.get('route'), src: p.get('src') };
  }

  // --- sites, routes, sources --------------------------------------------------------------

  function option(value, label) {
    const o = document.createElement('option');
    o.value = value;
    o.textContent = label === undefined ? value : label;
    return o;
  }

  async function selectSite(name, prefix, src) {
    const sites = state.config.sites;
    state.site = sites.find((s) => s.name === name) || sites[0];
    $('site').value = state.site.name;
    const routeSelect = $('route');
    routeSelect.replaceChildren();
    for (const r of state.site.routes) {
      routeSelect.append(option(r.prefix));
    }
    $('public').value = publicOverride || state.site.base_url || '';
    $('public-note').textContent = publicOverride
      ? 'From the page address (?public=); clear the field to use the config\'s.'
      : 'From the config (server.listen and the site\'s first host).';
    await selectRoute(prefix, src);
  }

  async function selectRoute(prefix, src) {
    const routes = state.site.routes;
    state.route = routes.find((r) => r.prefix === prefix) || routes[0];
    $('route').value = state.route.prefix;
    const r = state.route;
    const notes = [];
    if (r.signing === 'key') notes.push('URLs are signed here with the route\'s newest key.');
    if (r.signing === 'unsigned') notes.push('The route takes unsigned URLs.');
    if (r.signing === 'disabled') notes.push(r.signing_note);
    if (r.bearer) notes.push('The route wants a bearer token, which an <img> cannot send: the preview will be refused.');
    if (r.only_presets) notes.push('The route takes presets only: pick one.');
    if (r.allowed_options) notes.push('Options allowed in URLs: ' + r.allowed_options.join(', ') + '.');
    $('route-note').textContent = notes.join(' ');

    const presets = $('pr');
    const keep = state.wantedPreset !== null ? state.wantedPreset : presets.value;
    state.wantedPreset = null;
    presets.replaceChildren(option('', 'none'));
    for (const name of r.presets) {
      presets.append(option(name));
    }
    presets.value = r.presets.includes(keep) ? keep : '';
    $('wm').disabled = !r.watermark;
    $('wm-note').textContent = r.watermark ? '' : 'This route has no watermark image (route key watermark).';
    for (const el of $('controls').querySelectorAll('[data-option]')) {
      el.disabled = r.only_presets;
    }
    if (!r.watermark) $('wm').checked = false;
    syncVisibility();

    const local = $('local');
    local.replaceChildren();
    let images = [];
    if (state.site.local_root) {
      try {
        const listed = await api('images', { site: state.site.name, route: r.prefix });
        images = listed.images;
        $('local-note').textContent = listed.truncated
          ? 'Only the first ' + images.length + ' images are listed.'
          : '';
      } catch (e) {
        problem(e.message);
      }
    }
    local.append(option('', images.length ? '(type a source instead)' : '(no local root)'));
    for (const name of images) {
      local.append(option(name));
    }
    $('local').disabled = images.length === 0;
    if (src && images.includes(src)) {
      local.value = src;
      $('source').value = '';
    } else if (src) {
      $('source').value = src;
    } else if (images.length && !$('source').value.trim()) {
      // Never empty: the first local image.
      local.value = images[0];
    }
    schedule();
  }

  function syncVisibility() {
    $('fp-fields').hidden = $('g').value !== 'fp';
    $('bg').disabled = !$('bgon').checked;
    $('wm-fields').hidden = !$('wm').checked;
    $('qv').textContent = int('q') > 0 ? String(int('q')) : 'route default';
  }

  // --- copying -----------------------------------------------------------------------------

  async function copy(targetId, button) {
    const field = $(targetId);
    let ok = false;
    try {
      await navigator.clipboard.writeText(field.value);
      ok = true;
    } catch (e) {
      // Without the clipboard API (a page not in a secure context): select and copy.
      field.focus();
      field.select();
      try {
        ok = document.execCommand('copy');
      } catch (e2) {
        ok = false;
      }
    }
    button.textContent = ok ? 'Copied' : 'Select and copy by hand';
    button.dataset.copied = ok ? 'yes' : 'no';
    setTimeout(function () {
      button.textContent = 'Copy';
    }, 2000);
  }

  // --- start -------------------------------------------------------------------------------

  async function start() {
    for (const id of CONTROLS) {
      $(id).addEventListener('input', function () {
        syncVisibility();
        schedule();
      });
      $(id).addEventListener('change', function () {
        syncVisibility();
        schedule();
      });
    }
    $('source').addEventListener('input', schedule);
    $('local').addEventListener('change', function () {
      $('source').value = '';
      schedule();
    });
    $('site').addEventListener('change', function () {
      selectSite($('site').value, null, null);
    });
    $('route').addEventListener('change', function () {
      selectRoute($('route').value, currentSource());
    });
    $('public').addEventListener('change', function () {
      // The page's Content-Security-Policy names the image origins: a new one needs a reload.
      const typed = $('public').value.trim();
      const here = new URL(location.href);
      if (typed && typed !== (state.site && state.site.base_url)) {
        here.searchParams.set('public', typed);
      } else {
        here.searchParams.delete('public');
      }
      location.assign(here.toString());
    });
    $('controls').addEventListener('reset', function () {
      setTimeout(function () {
        syncVisibility();
        schedule();
      }, 0);
    });
    $('controls').addEventListener('submit', function (e) {
      e.preventDefault();
    });
    for (const button of document.querySelectorAll('button[data-copy]')) {
      button.addEventListener('click', function () {
        copy(button.dataset.copy, button);
      });
    }

    try {
      state.config = await api('config');
    } catch (e) {
      problem(e.message);
      return;
    }
    const c = state.config;
    $('version').textContent = 'imgforge ' + c.version;
    $('logout').hidden = c.token !== 'given';
    const formats = $('f');
    for (const f of c.formats) {
      // The client library's name for JPEG is jpg.
      formats.append(option(f === 'jpeg' ? 'jpg' : f, f));
    }
    if (!c.sites.length) {
      problem('No site has an imgproxy route: there is nothing to compose.');
      return;
    }
    const site = $('site');
    for (const s of c.sites) {
      site.append(option(s.name));
    }
    await followHash();
    // A link to another composition on this page (history.replaceState fires no hashchange).
    window.addEventListener('hashchange', followHash);
  }

  async function followHash() {
    const wanted = readHash();
    syncVisibility();
    await selectSite(wanted.site, wanted.route, wanted.src);
  }

  document.addEventListener('DOMContentLoaded', start);
})();
