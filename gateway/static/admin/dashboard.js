// The operator dashboard: everything it shows comes from /admin/api with the bearer token,
// which lives in this tab's sessionStorage only. Nothing of the shop is drawn until the API
// has accepted the token.
"use strict";

const API = "/admin/api";
const NEXT = {
  placed: ["confirmed", "cancelled"],
  confirmed: ["dispatched", "cancelled"],
  dispatched: ["delivered", "cancelled"],
  delivered: [],
  cancelled: [],
};
const OPEN = ["placed", "confirmed", "dispatched"];
const $ = (id) => document.getElementById(id);
let token = sessionStorage.getItem("okryu-token") || "";
let zone = "UTC"; // the shop's time zone (OKRYU_TIMEZONE), from /stats
let products = []; // the catalog as last read
let editing = null; // the sku of the product in the form, or null for a new one

class Refused extends Error {
  constructor(message, status, body) {
    super(message);
    this.status = status;
    this.body = body;
  }
}

async function api(path, options = {}) {
  const response = await fetch(API + path, {
    ...options,
    headers: {
      Authorization: `Bearer ${token}`,
      "Content-Type": options.type || "application/json",
    },
  });
  const text = await response.text();
  let data = text;
  try { data = JSON.parse(text); } catch { /* CSV, or an error in plain text */ }
  if (response.status === 401) {
    logOut();
    throw new Refused("Wrong token: the admin API refused it.", 401, data);
  }
  if (!response.ok) {
    throw new Refused((data && data.error) || response.statusText, response.status, data);
  }
  return data;
}

function problem(error) {
  $("problem").textContent = error ? String(error.message || error) : "";
  $("problem").hidden = !error;
}

function loggedIn(yes) {
  $("board").hidden = !yes;
  $("login").hidden = yes;
  $("logout").hidden = !yes;
  $("zone").hidden = !yes;
}

function logOut() {
  token = "";
  sessionStorage.removeItem("okryu-token");
  loggedIn(false);
  for (const id of ["orders", "counts", "funnel", "products", "detail-facts", "detail-lines",
    "detail-history", "detail-sms"]) $(id).replaceChildren();
  $("detail").hidden = true;
  $("product-form").hidden = true;
}

function cell(row, content) {
  const td = document.createElement("td");
  if (content instanceof Node) td.append(content);
  else td.textContent = content;
  row.append(td);
  return td;
}

function money(amount) {
  return `KPW ${amount.toLocaleString("en")}`;
}

// "2026-11-30 21:05" in the shop's zone; the zone is named once, in the header and the detail.
function when(iso) {
  const parts = new Intl.DateTimeFormat("en-CA", {
    timeZone: zone, year: "numeric", month: "2-digit", day: "2-digit",
    hour: "2-digit", minute: "2-digit", hourCycle: "h23",
  }).formatToParts(new Date(iso));
  const part = (type) => parts.find((p) => p.type === type).value;
  return `${part("year")}-${part("month")}-${part("day")} ${part("hour")}:${part("minute")}`;
}

// --- orders ---------------------------------------------------------------------------------

async function loadOrders() {
  const wanted = $("status-filter").value;
  const statuses = wanted ? [wanted] : OPEN;
  const pages = await Promise.all(statuses.map((s) => api(`/orders?status=${s}&limit=50`)));
  const orders = pages.flatMap((page) => page.items);
  orders.sort((a, b) => b.created_at.localeCompare(a.created_at));
  const body = $("orders");
  body.replaceChildren();
  for (const order of orders) {
    const row = document.createElement("tr");
    row.dataset.code = order.code;
    const open = document.createElement("button");
    open.type = "button";
    open.className = "code";
    open.textContent = order.code;
    open.setAttribute("aria-label", `Open order ${order.code}`);
    open.addEventListener("click", () => showOrder(order.code).catch(problem));
    cell(row, open);
    cell(row, order.status).className = "status";
    cell(row, money(order.total));
    cell(row, when(order.created_at));
    const actions = cell(row, "");
    for (const next of NEXT[order.status]) {
      const button = document.createElement("button");
      button.textContent = next;
      button.setAttribute("aria-label", `Mark ${order.code} ${next}`);
      button.addEventListener("click", () => move(order.code, next));
      actions.append(button);
    }
    body.append(row);
  }
}

async function move(code, status) {
  // Cancelling restocks and tells the customer by SMS: it is asked first.
  if (status === "cancelled" && !window.confirm(`Cancel order ${code}? The customer is told by SMS.`)) {
    return;
  }
  try {
    await api(`/orders/${code}/status`, { method: "POST", body: JSON.stringify({ status }) });
    problem(null);
    await refresh(false);
    if (!$("detail").hidden && $("detail").dataset.code === code) await showOrder(code);
  } catch (error) {
    problem(error);
  }
}

function fact(list, name, value) {
  const dt = document.createElement("dt");
  dt.textContent = name;
  const dd = document.createElement("dd");
  dd.textContent = value;
  list.append(dt, dd);
}

function logLine(list, text) {
  const item = document.createElement("li");
  item.textContent = text;
  list.append(item);
}

async function showOrder(code) {
  const order = await api(`/orders/${encodeURIComponent(code)}`);
  const panel = $("detail");
  panel.dataset.code = order.code;
  $("detail-title").textContent = `Order ${order.code}: ${order.status}`;
  const facts = $("detail-facts");
  facts.replaceChildren();
  fact(facts, "Customer", order.msisdn);
  fact(facts, "District", order.zone ? `${order.zone.name_en} (${order.zone.name_ko})` : "-");
  fact(facts, "Address", order.address);
  fact(facts, "Total", `${money(order.total)} (goods ${money(order.subtotal)}, delivery ${money(order.fee)})`);
  fact(facts, "Payment", order.payment_method);
  fact(facts, "Placed", `${when(order.created_at)} (${zone})`);
  const lines = $("detail-lines");
  lines.replaceChildren();
  for (const line of order.lines) {
    const row = document.createElement("tr");
    cell(row, `${line.quantity} x`);
    cell(row, `${line.name_en} / ${line.name_ko}`);
    cell(row, money(line.unit_price * line.quantity));
    lines.append(row);
  }
  const history = $("detail-history");
  history.replaceChildren();
  for (const event of order.history) {
    logLine(history, `${when(event.at)} ${event.status} by ${event.actor}${event.note ? `: ${event.note}` : ""}`);
  }
  const sms = $("detail-sms");
  sms.replaceChildren();
  for (const message of order.sms) logLine(sms, `${when(message.at)} [${message.status}] ${message.body}`);
  if (!order.sms.length) logLine(sms, "none");
  panel.hidden = false;
  panel.scrollIntoView({ block: "nearest" });
}

// --- funnel and live counts ------------------------------------------------------------------

async function loadFunnel() {
  const { steps } = await api("/reports/funnel");
  const top = Math.max(1, ...steps.map((s) => s.sessions));
  const chart = $("funnel");
  chart.replaceChildren();
  for (const step of steps) {
    const bar = document.createElement("div");
    bar.className = "bar";
    bar.dataset.screen = step.screen;
    const label = document.createElement("span");
    label.className = "label";
    label.textContent = step.screen;
    const fill = document.createElement("span");
    fill.className = "fill";
    fill.style.width = `${(60 * step.sessions) / top}%`;
    const n = document.createElement("span");
    n.className = "n";
    n.textContent = `${step.sessions}` + (step.dropped ? ` (-${step.dropped})` : "");
    bar.append(label, fill, n);
    chart.append(bar);
  }
}

async function loadStats() {
  const stats = await api("/stats");
  zone = stats.timezone || "UTC";
  $("zone").textContent = `Times in ${zone}`;
  $("hop-rate").textContent = stats.hops_per_second.toFixed(1);
  const counts = $("counts");
  counts.replaceChildren();
  for (const [group, values] of [["orders", stats.orders], ["sms", stats.sms]]) {
    for (const [status, count] of Object.entries(values)) fact(counts, `${group} ${status}`, count);
  }
}

// --- catalog and stock ------------------------------------------------------------------------

function catalogNote(text, bad) {
  $("catalog-note").textContent = text;
  $("catalog-note").classList.toggle("bad", Boolean(bad));
}

async function loadCatalog() {
  const [found, categories] = await Promise.all([api("/products"), api("/categories")]);
  products = found;
  const select = $("product-form").elements.category;
  select.replaceChildren(...categories.map((c) => new Option(`${c.name_en} / ${c.name_ko}`, c.slug)));
  drawProducts();
}

function drawProducts() {
  const words = $("catalog-search").value.trim().toLowerCase();
  const body = $("products");
  body.replaceChildren();
  for (const p of products) {
    const text = `${p.sku} ${p.name_en} ${p.name_ko}`.toLowerCase();
    if (words && !text.includes(words)) continue;
    const row = document.createElement("tr");
    row.dataset.sku = p.sku;
    cell(row, p.sku);
    cell(row, p.name_en);
    cell(row, p.name_ko);
    cell(row, money(p.price));
    cell(row, String(p.stock)).className = "stock-n";
    cell(row, p.active ? "yes" : "no");
    const edit = document.createElement("button");
    edit.type = "button";
    edit.textContent = "Edit";
    edit.setAttribute("aria-label", `Edit ${p.sku}`);
    edit.addEventListener("click", () => openProduct(p));
    cell(row, edit);
    body.append(row);
  }
}

function openProduct(p) {
  const form = $("product-form");
  editing = p ? p.sku : null;
  form.reset();
  $("product-form-title").textContent = p ? `Edit ${p.sku}` : "New product";
  const fields = form.elements;
  fields.sku.readOnly = Boolean(p);
  for (const name of ["sku", "category", "name_en", "name_ko", "description_en", "description_ko", "price"]) {
    if (p) fields[name].value = p[name];
  }
  fields.active.checked = p ? p.active : true;
  $("product-stock").textContent = p ? String(p.stock) : "0";
  form.querySelector(".stock").hidden = !p;
  $("stock-history").replaceChildren();
  if (p) showStockHistory(p.sku);
  form.hidden = false;
  fields.name_en.focus();
}

// The product's latest stock moves, each with its reason (newest first).
async function showStockHistory(sku) {
  let moves = [];
  try {
    moves = await api(`/products/${encodeURIComponent(sku)}/stock`);
  } catch (error) {
    return; // the history is a help, not a condition of editing
  }
  if (editing !== sku) return; // another product was opened meanwhile
  $("stock-history").replaceChildren(...moves.map((move) => {
    const item = document.createElement("li");
    const change = `${move.delta > 0 ? "+" : ""}${move.delta} → ${move.stock}`;
    item.textContent = `${when(move.created_at)}  ${change}  ${move.reason || "(no reason given)"}`;
    return item;
  }));
}

async function saveProduct(event) {
  event.preventDefault();
  const f = $("product-form").elements;
  const body = {
    category: f.category.value, name_en: f.name_en.value.trim(), name_ko: f.name_ko.value.trim(),
    description_en: f.description_en.value.trim(), description_ko: f.description_ko.value.trim(),
    price: Number(f.price.value), active: f.active.checked,
  };
  try {
    const saved = editing
      ? await api(`/products/${encodeURIComponent(editing)}`, { method: "PATCH", body: JSON.stringify(body) })
      : await api("/products", { method: "POST", body: JSON.stringify({ sku: f.sku.value.trim(), ...body }) });
    editing = saved.sku;
    await loadCatalog();
    openProduct(saved);
    catalogNote(`Saved ${saved.sku}.`); // last: the form is ready for the next change
  } catch (error) {
    catalogNote(`Not saved: ${error.message}`, true);
  }
}

async function moveStock() {
  const f = $("product-form").elements;
  const delta = Number(f.delta.value);
  const reason = f.reason.value.trim();
  if (!editing || !Number.isInteger(delta) || delta === 0) {
    catalogNote("Give a whole number to move the stock by, like 12 or -3.", true);
    return;
  }
  try {
    const saved = await api(`/products/${encodeURIComponent(editing)}/stock`, {
      method: "POST", body: JSON.stringify({ delta, reason }),
    });
    await loadCatalog();
    openProduct(saved);
    catalogNote(`Stock of ${saved.sku} moved by ${delta > 0 ? "+" : ""}${delta}: now ${saved.stock}.`);
  } catch (error) {
    catalogNote(`Stock not moved: ${error.message}`, true);
  }
}

async function downloadCsv() {
  try {
    const csv = await api("/catalog.csv");
    const link = document.createElement("a");
    link.href = URL.createObjectURL(new Blob([csv], { type: "text/csv" }));
    link.download = "okryu-catalog.csv";
    document.body.append(link);
    link.click();
    link.remove();
  } catch (error) {
    catalogNote(`Download failed: ${error.message}`, true);
  }
}

async function uploadCsv() {
  const file = $("csv-upload").files[0];
  if (!file) return;
  try {
    const done = await api("/catalog.csv", { method: "POST", type: "text/csv", body: await file.text() });
    catalogNote(`Imported ${file.name}: ${done.created} new, ${done.updated} changed.`);
    await loadCatalog();
  } catch (error) {
    const lines = (error.body && error.body.errors) || [];
    const detail = lines.map((e) => `line ${e.line}${e.field ? ` (${e.field})` : ""}: ${e.reason}`).join("\n");
    catalogNote(`Nothing imported: ${error.message}${detail ? `\n${detail}` : ""}`, true);
  } finally {
    $("csv-upload").value = "";
  }
}

// --- start ------------------------------------------------------------------------------------

async function refresh(withCatalog = true) {
  try {
    await loadStats(); // first: it says whether the token is good, and the time zone
    await Promise.all([loadFunnel(), loadOrders(), ...(withCatalog ? [loadCatalog()] : [])]);
    loggedIn(true);
    problem(null);
  } catch (error) {
    problem(error);
  }
}

// --- shop cards: find a customer's, issue one, top up at the counter, read a statement -------

const won = (amount) => `KPW ${amount.toLocaleString("en")}`;

async function loadCards() {
  const phone = $("card-phone").value.trim();
  if (!phone) return;
  const cards = await api(`/cards?phone=${encodeURIComponent(phone)}`);
  const body = $("cards");
  body.replaceChildren();
  for (const card of cards) {
    const row = document.createElement("tr");
    row.dataset.number = card.number;
    const number = cell(row, "");
    const link = document.createElement("button");
    link.textContent = card.number;
    link.setAttribute("aria-label", `Statement of card ${card.number}`);
    link.addEventListener("click", () => loadStatement(card.number).catch(problem));
    number.append(link);
    cell(row, won(card.balance)).className = "balance";
    cell(row, card.locked_until ? card.locked_until.replace("T", " ").slice(0, 16) : "");
    const topUp = cell(row, "");
    const form = document.createElement("form");
    form.setAttribute("aria-label", `Top up card ${card.number}`);
    const amount = document.createElement("input");
    amount.type = "number";
    amount.min = "1";
    amount.required = true;
    amount.placeholder = "won";
    amount.setAttribute("aria-label", "Amount");
    const reference = document.createElement("input");
    reference.required = true;
    reference.placeholder = "counter reference";
    reference.setAttribute("aria-label", "Counter reference");
    const go = document.createElement("button");
    go.type = "submit";
    go.textContent = "Top up";
    form.append(amount, reference, go);
    form.addEventListener("submit", (event) => {
      event.preventDefault();
      topUpCard(card.number, Number(amount.value), reference.value.trim());
    });
    topUp.append(form);
    body.append(row);
  }
}

async function topUpCard(number, amount, reference) {
  try {
    const done = await api(`/cards/${number}/topups`, {
      method: "POST",
      body: JSON.stringify({ amount, reference }),
    });
    problem(done.repeated ? { message: `Reference ${reference} was already topped up` } : null);
    await loadCards();
    await loadStatement(number);
  } catch (error) {
    problem(error);
  }
}

async function loadStatement(number) {
  const { lines } = await api(`/cards/${number}/statement`);
  const body = $("statement");
  body.replaceChildren();
  for (const line of lines) {
    const row = document.createElement("tr");
    cell(row, line.at.replace("T", " ").slice(0, 16));
    cell(row, line.order ? `${line.kind} ${line.order}` : line.kind);
    cell(row, won(line.amount));
    cell(row, won(line.balance));
    cell(row, line.reference);
    body.append(row);
  }
  $("statement-title").textContent = `Statement of card ${number}`;
  $("statement-title").hidden = $("statement-table").hidden = false;
}

$("card-find").addEventListener("submit", (event) => {
  event.preventDefault();
  loadCards().then(() => problem(null), problem);
});
$("card-issue").addEventListener("submit", async (event) => {
  event.preventDefault();
  const pin = $("card-pin");
  try {
    await api("/cards", {
      method: "POST",
      body: JSON.stringify({ phone: $("card-phone").value.trim(), pin: pin.value }),
    });
    problem(null);
    await loadCards();
  } catch (error) {
    problem(error);
  } finally {
    pin.value = ""; // the PIN is the customer's: not left in the page
  }
});

$("login").addEventListener("submit", (event) => {
  event.preventDefault();
  token = $("token").value.trim();
  $("token").value = "";
  sessionStorage.setItem("okryu-token", token);
  refresh();
});
$("logout").addEventListener("click", () => { logOut(); problem(null); });
$("status-filter").addEventListener("change", () => loadOrders().catch(problem));
$("detail-close").addEventListener("click", () => { $("detail").hidden = true; });
$("catalog-search").addEventListener("input", drawProducts);
$("product-new").addEventListener("click", () => openProduct(null));
$("product-cancel").addEventListener("click", () => { $("product-form").hidden = true; });
$("product-form").addEventListener("submit", saveProduct);
$("stock-move").addEventListener("click", moveStock);
$("csv-download").addEventListener("click", downloadCsv);
$("csv-upload").addEventListener("change", uploadCsv);
setInterval(() => { if (token && !$("board").hidden) loadStats().catch(problem); }, 2000);
// The catalog is read on opening and after each change here, not under an open form.
setInterval(() => { if (token && !$("board").hidden) refresh(false); }, 15000);
if (token) refresh();
