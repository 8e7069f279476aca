// The operator dashboard: everything it shows comes from /admin/api with the bearer token,
// which lives in this tab's sessionStorage only.
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

async function api(path, options = {}) {
  const response = await fetch(API + path, {
    ...options,
    headers: { Authorization: `Bearer ${token}`, "Content-Type": "application/json" },
  });
  const data = await response.json();
  if (response.status === 401) {
    sessionStorage.removeItem("okryu-token");
    $("board").hidden = true;
  }
  if (!response.ok) throw new Error(data.error || response.statusText);
  return data;
}

function problem(error) {
  $("problem").textContent = error ? String(error.message || error) : "";
  $("problem").hidden = !error;
}

function cell(row, text) {
  const td = document.createElement("td");
  td.textContent = text;
  row.append(td);
  return td;
}

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
    cell(row, order.code);
    cell(row, order.status).className = "status";
    cell(row, `KPW ${order.total.toLocaleString("en")}`);
    cell(row, order.created_at.replace("T", " ").slice(0, 16));
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
  try {
    await api(`/orders/${code}/status`, { method: "POST", body: JSON.stringify({ status }) });
    problem(null);
    await refresh();
  } catch (error) {
    problem(error);
  }
}

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
  $("hop-rate").textContent = stats.hops_per_second.toFixed(1);
  const counts = $("counts");
  counts.replaceChildren();
  for (const [group, values] of [["orders", stats.orders], ["sms", stats.sms]]) {
    for (const [status, count] of Object.entries(values)) {
      const dt = document.createElement("dt");
      dt.textContent = `${group} ${status}`;
      const dd = document.createElement("dd");
      dd.textContent = count;
      counts.append(dt, dd);
    }
  }
}

async function refresh() {
  try {
    await Promise.all([loadStats(), loadFunnel(), loadOrders()]);
    $("board").hidden = false;
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
  sessionStorage.setItem("okryu-token", token);
  refresh();
});
$("status-filter").addEventListener("change", () => loadOrders().catch(problem));
setInterval(() => { if (token && !$("board").hidden) loadStats().catch(problem); }, 2000);
setInterval(() => { if (token && !$("board").hidden) refresh(); }, 15000);
if (token) refresh();
