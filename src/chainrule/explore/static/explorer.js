// chainrule's circuit explorer: one ES module for the static page, the Jupyter widget
// (anywidget) and `chainrule serve`. Plain modern JavaScript, no build step, nothing fetched.
//
// It only SHOWS numbers that chainrule computed in Python (values, local gradients, upstream
// gradients, products, sums at forks); no derivative is ever computed here. A "model" holds the
// data: anywidget's model in Jupyter, staticModel() in a saved file, httpModel() in the server.
// Keys: "data" (the circuit), "inputs" (name -> number), "error" (text), "mode"
// ("static" | "live"), and for the server "expression".

const GRADIENT_FILL = "#c81e1e"; // the red that chainrule.draw paints gradients with
const PLAY_MS = 900;

/** A read-only model for a saved page: every step is precomputed, inputs cannot change. */
export function staticModel(data) {
  return {
    get: (key) => ({ data, mode: "static", error: "", inputs: {} })[key],
    set() {},
    save_changes() {},
    on() {},
    off() {},
  };
}

/** A model that asks the server to recompute (POST endpoint, JSON in and out). */
export function httpModel(endpoint, initial) {
  const state = { mode: "live", error: "", busy: false, ...initial };
  const listeners = new Map();
  const emit = (name) => (listeners.get(name) || []).forEach((cb) => cb());
  return {
    get: (key) => state[key],
    set: (key, value) => {
      state[key] = value;
    },
    on(name, cb) {
      if (!listeners.has(name)) listeners.set(name, []);
      listeners.get(name).push(cb);
    },
    off() {
      listeners.clear();
    },
    async save_changes() {
      state.busy = true;
      emit("change:busy");
      let reply;
      try {
        const response = await fetch(endpoint, {
          method: "POST",
          headers: { "Content-Type": "application/json" },
          body: JSON.stringify({ expression: state.expression, inputs: state.inputs }),
        });
        reply = await response.json().catch(() => ({ error: `the server answered ${response.status}` }));
      } catch (err) {
        reply = { error: `cannot reach the server (${err.message})` };
      }
      state.busy = false;
      emit("change:busy");
      if (reply.error) {
        state.error = reply.error;
        emit("change:error");
        return;
      }
      state.error = "";
      state.data = reply.data;
      state.inputs = reply.inputs;
      state.expression = reply.expression;
      emit("change:error");
      emit("change:data");
    },
  };
}

function h(tag, attrs = {}, ...children) {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (v === undefined || v === null || v === false) continue;
    if (k === "class") el.className = v;
    else if (k.startsWith("on")) el.addEventListener(k.slice(2), v);
    else el.setAttribute(k, v === true ? "" : v);
  }
  for (const c of children.flat()) {
    if (c === null || c === undefined || c === false) continue;
    el.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
  return el;
}

/** Draw the explorer into `el` from `model`; returns { destroy }. */
export function mount(el, model) {
  const state = { pos: 0, quiz: false, answered: new Set(), view: "all", wire: null, timer: null };
  const root = h("div", { class: "cr-explorer" });
  el.replaceChildren(root);

  const title = h("h2", { class: "cr-title" });
  const modeNote = h("p", { class: "cr-note", "data-role": "mode-note" });
  const counter = h("span", { class: "cr-counter", "data-role": "counter" });
  const button = (role, text, label, onclick) =>
    h("button", { type: "button", "data-role": role, title: label, "aria-label": label, onclick }, text);
  const quizBox = h("input", { type: "checkbox", "data-role": "quiz" });
  const viewSelect = h("select", { "data-role": "view", "aria-label": "modules" });
  const toolbar = h(
    "div",
    { class: "cr-toolbar" },
    button("reset", "reset", "back to the forward pass", () => go(0)),
    button("prev", "◀ previous", "previous backward step", () => go(state.pos - 1)),
    button("next", "next ▶", "next backward step", () => go(state.pos + 1)),
    button("play", "play ▶▶", "play the backward pass", () => play()),
    counter,
    h("label", { class: "cr-quiz-toggle" }, quizBox, " quiz"),
    viewSelect,
  );
  const circuit = h("div", { class: "cr-circuit", "data-role": "circuit" });
  const stepPanel = h("section", { class: "cr-step", "data-role": "step" });
  const wirePanel = h("section", { class: "cr-wire", "data-role": "wire" });
  const inputsPanel = h("section", { class: "cr-inputs", "data-role": "inputs" });
  const codePanel = h("section", { class: "cr-code", "data-role": "code" });
  const errorBox = h("div", { class: "cr-error", role: "alert", "data-role": "error" });
  root.append(
    h("header", {}, title, modeNote),
    toolbar,
    errorBox,
    h("div", { class: "cr-main" }, circuit, h("aside", { class: "cr-side" }, stepPanel, wirePanel, inputsPanel)),
    codePanel,
  );
  quizBox.addEventListener("change", () => {
    state.quiz = quizBox.checked;
    state.answered.clear();
    update();
  });
  viewSelect.addEventListener("change", () => {
    state.view = viewSelect.value;
    drawCircuit();
    update();
  });
  root.tabIndex = 0;
  root.addEventListener("keydown", (ev) => {
    if (ev.target.tagName === "INPUT" || ev.target.tagName === "TEXTAREA") return;
    if (ev.key === "ArrowRight") go(state.pos + 1);
    else if (ev.key === "ArrowLeft") go(state.pos - 1);
  });

  let data = model.get("data");
  let svgIndex = { byTitle: new Map(), edges: [] };

  function steps() {
    return data ? data.steps : [];
  }

  function go(pos) {
    const n = steps().length;
    state.pos = Math.max(0, Math.min(n, pos));
    update();
  }

  function play() {
    if (state.timer) {
      clearInterval(state.timer);
      state.timer = null;
      update();
      return;
    }
    if (state.pos >= steps().length) state.pos = 0;
    state.timer = setInterval(() => {
      if (state.pos >= steps().length) {
        clearInterval(state.timer);
        state.timer = null;
        update();
        return;
      }
      go(state.pos + 1);
    }, PLAY_MS);
    update();
  }

  // --- the circuit ---------------------------------------------------------------------------
  function drawCircuit() {
    const svg = data ? data.views[state.view] || data.views.all : "";
    circuit.innerHTML = svg;
    if (data && data.note) circuit.prepend(h("p", { class: "cr-note", "data-role": "diagram-note" }, data.note));
    const byTitle = new Map();
    const edges = [];
    for (const g of circuit.querySelectorAll("g.node, g.edge")) {
      const t = g.querySelector("title");
      const name = t ? t.textContent.trim() : "";
      if (g.classList.contains("edge")) {
        const [from, to] = name.split("->");
        edges.push({ g, from: from.split(":")[0], to: to.split(":")[0] });
      } else {
        byTitle.set(name, g);
      }
    }
    svgIndex = { byTitle, edges };
    if (!data) return;
    const moduleNodes = new Map(data.modules.map((m) => [m.node, m]));
    for (const w of data.wires) {
      const label = byTitle.get(w.dot);
      if (label) {
        label.classList.add("cr-wire-label");
        label.dataset.wire = w.id;
        label.dataset.name = w.name;
        label.addEventListener("click", () => selectWire(w.id));
        for (const t of label.querySelectorAll("text")) {
          if ((t.getAttribute("fill") || "").toLowerCase() === GRADIENT_FILL) t.classList.add("cr-grad");
        }
      }
      const node = byTitle.get(w.node);
      if (node) {
        node.dataset.wire = w.id;
        node.dataset.name = w.name;
        if (!w.leaf) node.classList.add("cr-gate");
        const mod = moduleNodes.get(w.node);
        if (mod && state.view !== mod.name && (data.views[mod.name] !== undefined) && isCollapsed(mod)) {
          node.classList.add("cr-module");
          node.dataset.module = mod.name;
          node.addEventListener("click", () => {
            state.view = mod.name;
            viewSelect.value = mod.name;
            drawCircuit();
            update();
          });
        } else if (!w.leaf) {
          node.addEventListener("click", () => {
            const k = steps().findIndex((s) => s.wire === w.id);
            if (k >= 0) go(k + 1);
          });
        }
      }
    }
    // a fork: its copy gate f<i> and branch labels b<i>_<k> (that use's gradient) belong to wire i
    for (const [name, g] of byTitle) {
      const m = /^(?:f|b)(\d+)(?:_(\d+))?$/.exec(name);
      const w = m && data.wires[Number(m[1])];
      if (!w) continue;
      g.classList.add("cr-wire-label");
      g.dataset.wire = w.id;
      g.dataset.name = w.name;
      g.addEventListener("click", () => selectWire(w.id));
      if (m[2] !== undefined) {
        const out = edges.find((e) => e.from === name);
        const target = out && /^g(\d+)$/.exec(out.to);
        const step = target && steps().find((s) => s.wire === Number(target[1]));
        g.dataset.reveal = step ? step.n : w.reveal;
        for (const t of g.querySelectorAll("text")) {
          if ((t.getAttribute("fill") || "").toLowerCase() === GRADIENT_FILL) t.classList.add("cr-grad");
        }
      }
    }
    for (const g of circuit.querySelectorAll(".cr-wire-label, .cr-gate, .cr-module")) hitArea(g);
    for (const e of edges) {
      const m = /^(?:w|f|b)(\d+)/.exec(e.from);
      const w = m && data.wires[Number(m[1])];
      if (w) {
        e.g.classList.add("cr-edge");
        e.g.addEventListener("click", () => selectWire(w.id));
      }
    }
  }

  function hitArea(g) {
    // a transparent rectangle behind the node, so that a click between its numbers still lands
    const box = g.getBBox();
    const pad = 2;
    const rect = document.createElementNS("http://www.w3.org/2000/svg", "rect");
    for (const [k, v] of Object.entries({ x: box.x - pad, y: box.y - pad, width: box.width + 2 * pad, height: box.height + 2 * pad })) {
      rect.setAttribute(k, v);
    }
    rect.setAttribute("fill", "#fff");
    rect.setAttribute("fill-opacity", "0");
    rect.classList.add("cr-hit");
    g.prepend(rect);
  }

  function isCollapsed(mod) {
    // a module is drawn as one box in every view but its own and "all"
    return state.view !== "all" && state.view !== mod.name;
  }

  function shownNodeOf(wire) {
    // where a gate appears in the current view: itself, or the box of its collapsed module
    const own = svgIndex.byTitle.get(wire.node);
    if (own && !own.classList.contains("cr-module")) return own;
    const mod = data.modules.find((m) => m.name === wire.module);
    if (mod) return svgIndex.byTitle.get(mod.node) || own;
    return own;
  }

  function shownAt(step) {
    if (!step || step > state.pos) return false;
    return !state.quiz || state.answered.has(step) || !quizzable(steps()[step - 1]);
  }

  function gradShown(wire) {
    return shownAt(wire.reveal);
  }

  // --- updating everything for the current position ----------------------------------------
  function update() {
    const n = steps().length;
    counter.textContent = n ? `step ${state.pos} of ${n}` : "no backward steps";
    toolbar.querySelector("[data-role=play]").textContent = state.timer ? "pause ❚❚" : "play ▶▶";
    toolbar.querySelector("[data-role=prev]").disabled = state.pos === 0;
    toolbar.querySelector("[data-role=next]").disabled = state.pos >= n;
    if (!data) return;
    const current = state.pos > 0 ? steps()[state.pos - 1] : null;
    for (const g of circuit.querySelectorAll(".cr-current, .cr-done, .cr-feeding, .cr-writing")) {
      g.classList.remove("cr-current", "cr-done", "cr-feeding", "cr-writing");
    }
    for (const w of data.wires) {
      const label = svgIndex.byTitle.get(w.dot);
      if (label) {
        for (const t of label.querySelectorAll(".cr-grad")) t.classList.toggle("cr-hidden", !gradShown(w));
      }
    }
    for (const g of circuit.querySelectorAll(".cr-wire-label")) {
      g.classList.toggle("cr-selected", state.wire === Number(g.dataset.wire));
      if (g.dataset.reveal === undefined) continue;
      for (const t of g.querySelectorAll(".cr-grad")) t.classList.toggle("cr-hidden", !shownAt(Number(g.dataset.reveal)));
    }
    for (const s of steps().slice(0, Math.max(0, state.pos - 1))) {
      const node = shownNodeOf(data.wires[s.wire]);
      if (node) node.classList.add("cr-done");
    }
    if (current) {
      const wire = data.wires[current.wire];
      const node = shownNodeOf(wire);
      if (node) {
        node.classList.remove("cr-done");
        node.classList.add("cr-current");
        node.scrollIntoView?.({ block: "nearest", inline: "nearest" });
      }
      for (const e of svgIndex.edges) if (node && e.to === titleOf(node)) e.g.classList.add("cr-feeding");
      // the wires (and fork branches) this step writes a gradient on
      for (const inp of current.inputs) {
        if (!inp.grad) continue;
        const src = data.wires[inp.wire];
        for (const g of circuit.querySelectorAll(`.cr-wire-label[data-wire="${src.id}"]`)) {
          const title = titleOf(g);
          const isBranch = /^b/.test(title);
          if (!isBranch || Number(g.dataset.reveal) === current.n) g.classList.add("cr-writing");
        }
      }
    }
    // in the quiz, the inputs' gradients are the last answers: hidden until every step is done
    const finals = inputsPanel.querySelector("[data-role=gradients]");
    if (finals) finals.hidden = state.quiz && !steps().every((s) => state.answered.has(s.n) || !quizzable(s));
    drawStep(current);
    drawCode(current);
    if (state.wire !== null) drawWire(state.wire);
  }

  function titleOf(g) {
    const t = g.querySelector("title");
    return t ? t.textContent.trim() : "";
  }

  // --- the explain row of the current step -------------------------------------------------
  function drawStep(step) {
    stepPanel.replaceChildren();
    if (!step) {
      const out = data.wires[data.output];
      stepPanel.append(
        h("h3", {}, "Forward pass"),
        h("p", {}, `Every wire shows its value (green). ${data.output !== undefined ? `${out.name} = ${out.value.text}.` : ""}`),
        h("p", { class: "cr-hint" }, "Press next ▶ to walk the backward pass, gate by gate from the output."),
      );
      return;
    }
    stepPanel.dataset.step = step.n;
    stepPanel.dataset.gate = step.name;
    const quiz = state.quiz && quizzable(step);
    const open = !quiz || state.answered.has(step.n);
    const head = h(
      "h3",
      {},
      `Step ${step.n}: `,
      h("span", { class: "cr-gate-label", "data-role": "gate-label" }, step.label),
      ` gate, ${step.formula} = `,
      h("span", { "data-role": "output-value" }, step.output.text),
    );
    const table = h(
      "table",
      { class: "cr-row", "data-role": "row" },
      h("thead", {}, h("tr", {}, ["input", "value", "local", "× upstream", "= gradient"].map((t) => h("th", {}, t)))),
    );
    const body = h("tbody");
    const guesses = [];
    for (const inp of step.inputs) {
      let gradCell;
      if (!inp.grad) gradCell = h("td", {}, "-");
      else if (!open && inp.grad.num !== null) {
        const field = h("input", { type: "text", inputmode: "decimal", size: 7, "data-role": "guess", "aria-label": `gradient on ${inp.name}` });
        guesses.push({ field, inp });
        gradCell = h("td", {}, `d${inp.name} ${inp.forked ? "+=" : "="} `, field);
      } else {
        gradCell = h("td", { "data-role": "grad" }, `d${inp.name} ${inp.forked ? "+=" : "="} `, h("b", {}, inp.grad.text));
      }
      body.append(
        h(
          "tr",
          { "data-input": inp.name },
          h("td", {}, inp.name),
          h("td", { class: "cr-value" }, inp.value.text),
          h("td", { "data-role": "local" }, inp.local ? inp.local.text : step.rules.length ? "(rule)" : "-"),
          h("td", { "data-role": "upstream" }, step.upstream.text),
          gradCell,
        ),
      );
    }
    table.append(body);
    stepPanel.replaceChildren(head, table);
    const forks = step.inputs.filter((i) => i.forked && open);
    for (const f of forks) {
      stepPanel.append(h("p", { class: "cr-fork" }, `fork adds: d${f.name} is now ${f.total.text}`));
    }
    if (step.patterns.length) stepPanel.append(h("p", { class: "cr-pattern" }, step.patterns.join(", ")));
    for (const rule of step.rules) stepPanel.append(h("pre", { class: "cr-rule" }, rule));
    // tensors: the upstream gradient and each input's value and gradient as small heatmaps
    const maps = [];
    if (step.upstream.heat) maps.push(heatmap(`upstream d${step.name}`, step.upstream, 96));
    for (const inp of step.inputs) {
      if (inp.value.heat) maps.push(heatmap(inp.name, inp.value, 96));
      if (inp.grad && inp.grad.heat && open) maps.push(heatmap(`d${inp.name}`, inp.grad, 96));
    }
    if (maps.length) stepPanel.append(h("div", { class: "cr-heatrow", "data-role": "step-heatmaps" }, maps));
    if (guesses.length) {
      const feedback = h("p", { class: "cr-feedback", "data-role": "feedback" });
      const check = () => {
        const wrong = guesses.filter(({ field, inp }) => !close(parseFloat(field.value), inp.grad.num));
        if (wrong.length === 0) {
          state.answered.add(step.n);
          update();
          stepPanel.querySelector(".cr-quiz-result")?.remove();
          stepPanel.append(h("p", { class: "cr-quiz-result cr-right", "data-role": "feedback" }, "✓ right: local × upstream"));
        } else {
          feedback.className = "cr-feedback cr-wrong";
          feedback.textContent = `✗ not yet: check d${wrong[0].inp.name} (local gradient × upstream gradient)`;
        }
      };
      for (const { field } of guesses) field.addEventListener("keydown", (ev) => ev.key === "Enter" && check());
      stepPanel.append(
        h(
          "div",
          { class: "cr-quiz" },
          h("button", { type: "button", "data-role": "check", onclick: check }, "check"),
          h("button", { type: "button", "data-role": "show", onclick: () => { state.answered.add(step.n); update(); } }, "show"),
          feedback,
        ),
      );
    }
  }

  function quizzable(step) {
    return step.inputs.some((i) => i.grad && i.grad.num !== null);
  }

  // --- a clicked wire ----------------------------------------------------------------------
  function selectWire(id) {
    state.wire = id;
    update();
  }

  function drawWire(id) {
    const w = data.wires[id];
    if (!w) return;
    wirePanel.replaceChildren();
    wirePanel.dataset.wire = w.name;
    const shown = w.grad && (gradShown(w) || state.pos >= steps().length && !state.quiz);
    wirePanel.append(
      h("h3", {}, "Wire ", h("span", { "data-role": "wire-name" }, w.name), w.formula ? ` = ${w.formula}` : w.constant ? " (constant)" : " (input)"),
      h("p", {}, "value ", h("b", { class: "cr-value", "data-role": "wire-value" }, w.value.text)),
    );
    if (w.grad) {
      wirePanel.append(h("p", {}, "gradient ", h("b", { class: "cr-gradtext", "data-role": "wire-grad" }, shown ? w.grad.text : "?")));
    }
    if (w.value.heat) wirePanel.append(heatmap("value", w.value));
    if (w.grad && w.grad.heat && shown) wirePanel.append(heatmap("gradient", w.grad));
    if (w.branches.length > 1) {
      const list = h("ul", { class: "cr-branches", "data-role": "branches" });
      for (const b of w.branches) {
        const visible = b.step <= state.pos && (!state.quiz || state.answered.has(b.step)) || state.pos >= steps().length && !state.quiz;
        list.append(h("li", { "data-role": "branch" }, `from ${b.label || b.gate} → ${b.to} (step ${b.step}): `, h("b", {}, visible ? b.grad.text : "?")));
      }
      wirePanel.append(
        h("p", { class: "cr-fork" }, `fork: ${w.name} feeds ${w.branches.length} gates; their gradients add`),
        list,
        h("p", {}, "sum = ", h("b", { "data-role": "branch-sum" }, shown ? w.grad.text : "?")),
      );
    }
  }

  function heatmap(what, v, width = 216) {
    const { rows, cols, data: cells, lo, hi, total } = v.heat;
    const scale = Math.max(Math.abs(lo), Math.abs(hi)) || 1;
    const size = Math.max(2, Math.min(18, Math.floor(width / Math.max(rows, cols))));
    const canvas = h("canvas", { width: cols * size, height: rows * size, class: "cr-heat", "data-role": `heat-${what}` });
    const ctx = canvas.getContext("2d");
    cells.forEach((x, k) => {
      ctx.fillStyle = x === null ? "#000" : color(x / scale);
      ctx.fillRect((k % cols) * size, Math.floor(k / cols) * size, size, size);
    });
    const more = total[0] > rows || total[1] > cols ? ` (top-left ${rows}×${cols} shown)` : "";
    const shape = `(${v.shape.join(",")})`;
    const caption = width < 216 ? `${what} ${shape}` : `${what}: shape ${shape} ${v.dtype}, ${fmt(lo)} … ${fmt(hi)}${more}`;
    const figure = h("figure", { class: "cr-heatfig", title: `${what}: ${shape} ${v.dtype}, ${fmt(lo)} … ${fmt(hi)}${more}` }, canvas, h("figcaption", {}, caption));
    return figure;
  }

  // --- the staged code ---------------------------------------------------------------------
  function drawCode(step) {
    const code = data.code;
    if (!codePanel.firstChild || codePanel.dataset.source !== String(code.lines.length) + code.lines[0]) {
      codePanel.replaceChildren(h("h3", {}, "Staged code"));
      codePanel.dataset.source = String(code.lines.length) + code.lines[0];
      if (code.note) codePanel.append(h("p", { class: "cr-note" }, code.note));
      const pre = h("pre", {});
      code.lines.forEach((line, i) => pre.append(h("span", { class: "cr-line", "data-line": i }, line + "\n")));
      codePanel.append(pre);
    }
    const wanted = new Set(step ? step.code : []);
    let first = null;
    for (const span of codePanel.querySelectorAll(".cr-line")) {
      const on = wanted.has(Number(span.dataset.line));
      span.classList.toggle("cr-on", on);
      // scroll to the step's backward block (its "# backprop" line), else its first line
      if (on && (!first || (span.textContent.trim().startsWith("# backprop") && !first.textContent.trim().startsWith("# backprop")))) first = span;
    }
    if (first) {
      const pre = first.parentElement;
      const top = first.getBoundingClientRect().top - pre.getBoundingClientRect().top + pre.scrollTop;
      if (top < pre.scrollTop || top > pre.scrollTop + pre.clientHeight - 20) pre.scrollTop = top - 20;
    }
  }

  // --- inputs --------------------------------------------------------------------------------
  function drawInputs() {
    inputsPanel.replaceChildren(h("h3", {}, "Inputs"));
    const live = model.get("mode") === "live";
    if (live && model.get("expression") !== undefined) {
      const field = h("input", { type: "text", value: model.get("expression") || "", "data-role": "expression", "aria-label": "expression", spellcheck: "false" });
      const submit = () => {
        model.set("expression", field.value);
        model.save_changes();
      };
      field.addEventListener("keydown", (ev) => ev.key === "Enter" && submit());
      inputsPanel.append(h("div", { class: "cr-expression" }, field, h("button", { type: "button", "data-role": "explore", onclick: submit }, "explore")));
    }
    if (!live) {
      inputsPanel.append(
        h("p", { class: "cr-note" }, "This saved page has every step precomputed. Editing inputs needs the live forms: cr.explore(...) in Jupyter or chainrule serve."),
      );
    }
    for (const field of data ? data.inputs : []) {
      if (!field.editable) {
        const shape = `(${field.shape.join(",")})`;
        if (!live || field.value === null) {
          inputsPanel.append(h("p", { class: "cr-field" }, `${field.name}: array of shape ${shape}`));
          continue;
        }
        // a small array, typed as nested lists: [[0.1, 0.5], [-0.3, 0.8]]
        const text = h("input", { type: "text", value: JSON.stringify(field.value), "data-role": "array", "data-name": field.name, spellcheck: "false", title: `shape ${shape}` });
        text.addEventListener("change", () => {
          let value;
          try {
            value = JSON.parse(text.value);
          } catch {
            errorBox.textContent = `${field.name}: write the array as nested lists, e.g. [[1, 2], [3, 4]]`;
            errorBox.hidden = false;
            return;
          }
          const inputs = { ...(model.get("inputs") || {}) };
          inputs[field.name] = value;
          model.set("inputs", inputs);
          model.save_changes();
        });
        inputsPanel.append(h("label", { class: "cr-field cr-array" }, h("span", {}, field.name), text));
        continue;
      }
      const span = Math.max(2, Math.abs(field.value) * 2);
      const number = h("input", { type: "number", step: "any", value: field.value, "data-role": "input", "data-name": field.name, disabled: !live });
      const slider = h("input", {
        type: "range", min: String(-span), max: String(span), step: String(span / 100), value: field.value,
        "data-role": "slider", "data-name": field.name, disabled: !live, "aria-label": field.name,
      });
      const send = (value) => {
        const v = Number(value);
        if (!Number.isFinite(v)) return;
        const inputs = { ...(model.get("inputs") || {}) };
        for (const f of data.inputs) if (f.editable && !(f.name in inputs)) inputs[f.name] = f.value;
        inputs[field.name] = v;
        model.set("inputs", inputs);
        model.save_changes();
      };
      number.addEventListener("change", () => send(number.value));
      slider.addEventListener("input", () => (number.value = slider.value));
      slider.addEventListener("change", () => send(slider.value));
      inputsPanel.append(h("label", { class: "cr-field" }, h("span", {}, field.name), number, slider));
    }
    if (data && data.gradients.length) {
      const list = h("p", { class: "cr-grads", "data-role": "gradients" });
      data.gradients.forEach((g, k) => list.append(k ? "  " : "", `d${g.name} = `, h("b", { "data-grad": g.name }, g.grad.text)));
      inputsPanel.append(list);
    }
  }

  function showError() {
    const message = model.get("error") || "";
    errorBox.textContent = message;
    errorBox.hidden = !message;
  }

  function load() {
    data = model.get("data");
    title.textContent = data ? data.title || "circuit" : "";
    const live = model.get("mode") === "live";
    modeNote.textContent = live ? "live: changing an input recomputes in Python" : "static page";
    viewSelect.replaceChildren();
    const modules = data ? data.modules : [];
    viewSelect.hidden = modules.length === 0;
    if (modules.length) {
      viewSelect.append(h("option", { value: "collapsed" }, "modules collapsed"), h("option", { value: "all" }, "every gate"));
      for (const m of modules) viewSelect.append(h("option", { value: m.name }, `expand ${m.label}`));
      if (!(state.view in data.views)) state.view = "collapsed";
      if (state.view === "all" && !state.viewChosen) state.view = "collapsed";
      viewSelect.value = state.view;
    } else state.view = "all";
    state.pos = Math.min(state.pos, steps().length);
    if (state.wire !== null && (!data || state.wire >= data.wires.length)) state.wire = null;
    drawCircuit();
    drawInputs();
    update();
  }
  viewSelect.addEventListener("change", () => (state.viewChosen = true));

  model.on("change:data", load);
  model.on("change:error", showError);
  model.on("change:busy", () => root.classList.toggle("cr-busy", !!model.get("busy")));
  load();
  showError();
  return {
    destroy() {
      if (state.timer) clearInterval(state.timer);
      model.off("change:data", load);
      model.off("change:error", showError);
    },
  };
}

function close(guess, exact) {
  // two significant digits are enough: -0.53 for -0.534, 0.2 for 0.197
  if (!Number.isFinite(guess) || exact === null) return false;
  return Math.abs(guess - exact) <= Math.max(0.006, 0.015 * Math.abs(exact));
}

function fmt(x) {
  return Math.abs(x) >= 1e4 || (x !== 0 && Math.abs(x) < 1e-3) ? x.toExponential(2) : String(+x.toFixed(3));
}

function color(t) {
  // diverging: blue (negative) - white (0) - red (positive)
  const a = Math.max(-1, Math.min(1, t));
  const mix = (c) => Math.round(255 - (255 - c) * Math.abs(a));
  return a < 0 ? `rgb(${mix(33)},${mix(102)},${mix(172)})` : `rgb(${mix(200)},${mix(30)},${mix(30)})`;
}

function render({ model, el }) {
  return mount(el, model).destroy;
}

export default { render };
