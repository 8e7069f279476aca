// The Okryu web handset. The page only draws: the server-side simulator (/simulator/api/)
// holds a phone that calls the gateway's /ussd/<aggregator> in that aggregator's format.
"use strict";

(() => {
  const $ = (id) => document.getElementById(id);
  const el = {
    settings: $("settings"), msisdn: $("msisdn"), numbers: $("numbers"), dialect: $("dialect"),
    network: $("network"), seed: $("seed"), code: $("code"), info: $("session-info"),
    transcript: $("transcript"), scenario: $("scenario"), carrier: $("carrier"), screen: $("screen"), answer: $("answer"),
    badge: $("badge"), phone: document.querySelector(".phone"), sms: $("sms"),
    inboxNumber: $("inbox-number"), inboxStatus: $("inbox-status"), events: $("events"),
    softLeft: $("soft-left"), softRight: $("soft-right"), mode: $("mode"),
    smsForm: $("sms-form"), smsText: $("sms-text"),
  };
  // Multi-tap, as on the basic handsets the shop is for: each press of a key moves to its
  // next character; a pause (or another key) keeps the one shown.
  const LETTERS = {
    1: ".,-'1", 2: "abc2", 3: "def3", 4: "ghi4", 5: "jkl5", 6: "mno6", 7: "pqrs7", 8: "tuv8",
    9: "wxyz9", 0: " 0",
  };
  const TAP_PAUSE = 1000; // ms without a press that keeps the letter shown
  const LABELS = { gsm7: "GSM-7", ucs2: "UCS-2" };
  const DIAL_CODE = /^\*[0-9][0-9*]*#$/;
  const INBOX_EVERY = 1000; // ms between looks at the SMS inbox

  let handset = null; // {handle, msisdn, dialect, network, seed, key}
  let inSession = false;
  let queue = Promise.resolve(); // keys pressed while a hop is on its way wait their turn

  // --- the simulator's API ---------------------------------------------------------------

  async function call(path, body) {
    const init = body === undefined ? {} : {
      method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify(body),
    };
    const response = await fetch(`api/${path}`, init);
    const data = await response.json().catch(() => ({}));
    if (!response.ok) {
      const error = new Error(data.error || `HTTP ${response.status}`);
      error.status = response.status;
      throw error;
    }
    return data;
  }

  function wanted() {
    const seed = el.seed.value.trim();
    return {
      msisdn: el.msisdn.value.trim(), dialect: el.dialect.value, network: el.network.value,
      ...(seed === "" ? {} : { seed: Number(seed) }),
    };
  }

  // The same settings keep the same handset (and transcript); changed ones start another.
  async function currentHandset() {
    const want = wanted();
    const key = JSON.stringify(want);
    if (handset && handset.key === key) return handset;
    const made = await call("sessions", want);
    handset = { ...made, key };
    inSession = false;
    el.transcript.href = `api/sessions/${made.handle}/transcript`;
    el.transcript.setAttribute("aria-disabled", "false");
    el.scenario.href = `api/sessions/${made.handle}/scenario`;
    el.scenario.setAttribute("aria-disabled", "false");
    el.info.textContent = `${made.msisdn} via ${made.dialect}, ${made.network} network ` +
      `(seed ${made.seed})`;
    el.carrier.textContent = made.dialect.toUpperCase().slice(0, 14);
    note(`-- new handset: ${made.dialect}, ${made.network}, seed ${made.seed}`);
    watchInbox(made.msisdn);
    return handset;
  }

  // --- what the handset does --------------------------------------------------------------

  function enqueue(work) {
    queue = queue.then(work).catch((error) => {
      if (error.status === 404) handset = null; // expired: the next dial starts a new one
      inSession = false;
      showText(error.message, "error");
      clearBadge();
    });
  }

  function dial(code) {
    enqueue(async () => {
      const { handle } = await currentHandset();
      show(await call(`sessions/${handle}/dial`, { code }));
    });
  }

  function pressSend() {
    keep();
    const typed = el.answer.value;
    el.answer.value = "";
    enqueue(async () => {
      if (inSession) {
        show(await call(`sessions/${handset.handle}/send`, { answer: typed }));
      } else if (typed.trim() === "" || DIAL_CODE.test(typed.trim())) {
        const { handle } = await currentHandset();
        const code = typed.trim() || el.code.value.trim();
        show(await call(`sessions/${handle}/dial`, { code }));
      } else {
        showText(`Dial a code like ${el.code.value} first.`, "error");
      }
    });
  }

  function pressCancel() {
    el.answer.value = "";
    enqueue(async () => {
      if (inSession && handset) show(await call(`sessions/${handset.handle}/cancel`, {}));
      idle();
    });
  }

  let letters = false; // the keypad's mode in a session: digits (123) or letters (abc)
  let tap = null; // the key being multi-tapped: {key, index, timer}

  function type(key) {
    if (inSession && key === "#") { // switches the mode, as on a handset in a text field
      keep();
      letters = !letters;
      el.mode.textContent = letters ? "abc" : "123";
      return;
    }
    if (!letters || !inSession || !(key in LETTERS)) {
      keep();
      el.answer.value += key;
      return;
    }
    const cycle = LETTERS[key];
    if (tap && tap.key === key) {
      tap.index = (tap.index + 1) % cycle.length;
      el.answer.value = el.answer.value.slice(0, -1) + cycle[tap.index];
    } else {
      keep();
      tap = { key, index: 0, timer: 0 };
      el.answer.value += cycle[0];
    }
    clearTimeout(tap.timer);
    tap.timer = setTimeout(keep, TAP_PAUSE);
  }

  function keep() {
    if (tap) clearTimeout(tap.timer);
    tap = null;
  }

  function backspace() {
    keep();
    el.answer.value = el.answer.value.slice(0, -1);
  }

  function softkeys(ended) {
    // After an END the call keys dismiss and dial again, and say so.
    el.softLeft.textContent = ended ? "Dial again" : "Send";
    el.softRight.textContent = ended ? "OK" : "Cancel";
  }

  // --- drawing ----------------------------------------------------------------------------

  function show(answer) {
    inSession = !answer.end;
    keep();
    softkeys(answer.end);
    for (const line of answer.events) note(line);
    showText(answer.text, answer.cut ? "cut" : answer.error ? "error" : "");
    if (answer.encoding === null) {
      clearBadge(answer.cut ? "network cut the session" : "");
      return;
    }
    const label = LABELS[answer.encoding];
    el.badge.textContent = `${label} ${answer.units}/${answer.limit}`;
    el.badge.title = `The screen uses ${answer.units} of ${answer.limit} ${label} units`;
    el.badge.classList.toggle("over", answer.units > answer.limit);
  }

  function showText(text, kind) {
    el.screen.textContent = text;
    el.screen.className = `screen ${kind || ""}`.trim();
    el.screen.scrollTop = 0; // a new screen is read from its top, as on a handset
  }

  function clearBadge(text) {
    el.badge.textContent = text || "\u00a0";
    el.badge.title = "";
    el.badge.classList.remove("over");
  }

  function idle() {
    inSession = false;
    keep();
    softkeys(false);
    showText(`Okryu\n\nDial ${el.code.value.trim() || "*123#"} and press Send.`);
    clearBadge();
  }

  function note(line) {
    const item = document.createElement("li");
    item.textContent = line;
    if (/\bcut\b/.test(line)) item.className = "cut";
    el.events.append(item);
    el.events.scrollTop = el.events.scrollHeight;
  }

  function flash(name) {
    const key = el.phone.querySelector(`[data-key="${CSS.escape(name)}"], [data-action="${name}"]`);
    if (!key) return;
    key.classList.add("pressed");
    setTimeout(() => key.classList.remove("pressed"), 120);
  }

  // --- the SMS inbox: the gateway's development inbox, looked at every second -------------

  const inbox = { number: null, after: 0, round: 0 };

  function watchInbox(number) {
    if (number === inbox.number) return;
    Object.assign(inbox, { number, after: 0, round: inbox.round + 1 });
    el.inboxNumber.textContent = number ? `for ${number}` : "";
    el.sms.replaceChildren();
    el.inboxStatus.textContent = "";
    lookAtInbox(inbox.round);
  }

  async function lookAtInbox(round) {
    if (round !== inbox.round || !inbox.number) return;
    try {
      const query = new URLSearchParams({ to: inbox.number, after: String(inbox.after) });
      const response = await fetch(`../dev/sms?${query}`);
      if (response.status === 404) {
        el.inboxStatus.textContent = "No development inbox: this gateway sends real SMS.";
        return; // nothing to look at, ever
      }
      if (!response.ok) throw new Error(await response.text());
      const { messages } = await response.json();
      if (round !== inbox.round) return;
      for (const message of messages) {
        const item = document.createElement("li");
        const at = document.createElement("time");
        at.dateTime = message.at;
        at.textContent = new Date(message.at).toLocaleTimeString();
        item.append(at, message.body);
        el.sms.prepend(item); // the newest on top
        inbox.after = Math.max(inbox.after, message.id);
      }
      el.inboxStatus.textContent = el.sms.children.length ? "" : "No messages yet.";
    } catch (error) {
      el.inboxStatus.textContent = `Inbox: ${error.message}`;
    }
    setTimeout(() => lookAtInbox(round), INBOX_EVERY);
  }

  // --- an SMS from the handset: to the inbound endpoint a network calls ------------------

  let sent = 0;

  async function sendSms(text) {
    const number = inbox.number || el.msisdn.value.trim();
    const form = new URLSearchParams({
      from: number, to: "OKRYU", text, id: `web-${Date.now()}-${sent++}`,
      date: new Date().toISOString().replace("T", " ").slice(0, 19),
    });
    const response = await fetch("../sms/africastalking", { method: "POST", body: form });
    if (!response.ok) throw new Error(`${response.status} ${await response.text()}`);
    const item = document.createElement("li");
    item.className = "out";
    const at = document.createElement("time");
    at.textContent = `sent ${new Date().toLocaleTimeString()}`;
    item.append(at, text);
    el.sms.prepend(item);
    note(`sms       ${text}`);
  }

  el.smsForm.addEventListener("submit", (event) => {
    event.preventDefault();
    const text = el.smsText.value.trim();
    if (!text) return;
    el.smsText.value = "";
    sendSms(text).catch((error) => { el.inboxStatus.textContent = `SMS: ${error.message}`; });
  });

  // --- input: the keypad by click, the keyboard anywhere but the settings -----------------

  el.phone.addEventListener("click", (event) => {
    const button = event.target.closest("button");
    if (!button) return;
    if (button.dataset.key) type(button.dataset.key);
    else if (button.dataset.action === "send") pressSend();
    else if (button.dataset.action === "cancel") pressCancel();
    else if (button.dataset.action === "backspace") backspace();
  });

  document.addEventListener("keydown", (event) => {
    if (event.ctrlKey || event.metaKey || event.altKey) return;
    const typing = event.target === el.answer;
    if (!typing && event.target.closest && event.target.closest("#settings, #sms-form")) return;
    const key = event.key;
    if (key === "Enter") {
      event.preventDefault(); // also keeps a focused keypad button from being clicked
      flash("send");
      pressSend();
    } else if (key === "Escape") {
      event.preventDefault();
      flash("cancel");
      pressCancel();
    } else if (/^[0-9*#]$/.test(key)) {
      flash(key);
      if (!typing) {
        event.preventDefault();
        type(key);
      }
    } else if (key === "Backspace" && !typing) {
      event.preventDefault();
      flash("backspace");
      backspace();
    } else if (typing && (key === "ArrowDown" || key === "ArrowUp")) {
      event.preventDefault(); // the answer line has one row: the arrows scroll the screen
      el.screen.scrollBy(0, (key === "ArrowDown" ? 1 : -1) * 16);
    }
  });

  el.settings.addEventListener("submit", (event) => {
    event.preventDefault();
    el.answer.value = "";
    dial(el.code.value.trim());
    el.answer.focus();
  });

  el.msisdn.addEventListener("change", () => watchInbox(el.msisdn.value.trim()));

  // --- start ------------------------------------------------------------------------------

  function fill(select, values) {
    select.replaceChildren(...values.map((value) => new Option(value, value)));
  }

  async function start() {
    const options = await call("options");
    fill(el.dialect, options.dialects.map((dialect) => dialect.slug));
    fill(el.network, options.networks);
    el.msisdn.value = options.msisdn;
    el.numbers.replaceChildren(new Option(options.msisdn));
    el.code.value = options.service_code;
    idle();
    watchInbox(options.msisdn);
    el.answer.focus();
  }

  start().catch((error) => showText(`The simulator is unavailable: ${error.message}`, "error"));
})();
