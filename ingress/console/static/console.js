// Live refresh, copy buttons and the code-exchange countdown. No build step.
"use strict";

function refreshEvery(element) {
  const url = element.dataset.refresh;
  const every = Number(element.dataset.every || 5000);
  setInterval(async () => {
    try {
      const response = await fetch(url, { credentials: "same-origin", redirect: "error" });
      if (response.ok) element.innerHTML = await response.text();
    } catch (error) {
      // Signed out or offline: keep what is shown.
    }
  }, every);
}

function copyButton(button) {
  button.addEventListener("click", async () => {
    const source = document.querySelector(button.dataset.copy);
    const text = source.value !== undefined ? source.value : source.textContent;
    const note = button.parentElement.querySelector(".copied");
    try {
      await navigator.clipboard.writeText(text);
      if (note) note.textContent = "Copied.";
    } catch (error) {
      source.select && source.select();
      if (note) note.textContent = "Press Ctrl+C to copy.";
    }
  });
}

function codeExchange(box) {
  const code = box.querySelector("#zoho-code");
  const minutes = box.querySelector("#code-minutes");
  const countdown = box.querySelector("#countdown");
  let deadline = null;
  let timer = null;
  const tick = () => {
    const left = Math.max(0, Math.round((deadline - Date.now()) / 1000));
    const m = Math.floor(left / 60);
    const s = String(left % 60).padStart(2, "0");
    countdown.textContent = left
      ? `The code expires in about ${m}:${s}.`
      : "The code has probably expired: generate a new one.";
    if (!left) clearInterval(timer);
  };
  const start = () => {
    if (timer) clearInterval(timer);
    deadline = Date.now() + Number(minutes.value) * 60000;
    tick();
    timer = setInterval(tick, 1000);
  };
  code.addEventListener("input", () => { if (deadline === null) start(); });
  minutes.addEventListener("change", () => { if (deadline !== null) start(); });
  box.querySelector("#open-exchange").addEventListener("click", () => {
    const value = code.value.trim();
    if (!value) { countdown.textContent = "Paste the code first."; return; }
    const url = new URL(box.dataset.exchange);
    url.searchParams.set("zoho_code", value);
    window.open(url.toString(), "_blank", "noopener,noreferrer");
  });
}

document.addEventListener("DOMContentLoaded", () => {
  document.querySelectorAll("[data-refresh]").forEach(refreshEvery);
  document.querySelectorAll("[data-copy]").forEach(copyButton);
  document.querySelectorAll("[data-exchange]").forEach(codeExchange);
  const reload = document.querySelector("[data-reload-every]");
  if (reload) setTimeout(() => window.location.reload(), Number(reload.dataset.reloadEvery));
});
