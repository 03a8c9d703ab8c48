// Causeway UI: the token prompt (when the server has auth.token_env), fetching page content
// with the token, and the incident actions as JSON POSTs to the API. No framework, no build.
(function () {
  "use strict";
  var TOKEN_KEY = "causeway.token";

  function token() {
    try { return window.sessionStorage.getItem(TOKEN_KEY); } catch (e) { return null; }
  }

  function headers(json) {
    var result = { "Accept": "application/json, text/html" };
    if (json) { result["Content-Type"] = "application/json"; }
    var value = token();
    if (value) { result["Authorization"] = "Bearer " + value; }
    return result;
  }

  function byId(id) { return document.getElementById(id); }

  function needsToken() { return document.body.getAttribute("data-auth") === "token"; }

  // With auth: show the prompt until a token works, then fetch the page's content with it.
  function loadFragment() {
    var holder = byId("fragment");
    if (!holder) { return; }
    var prompt = byId("auth-prompt");
    if (!token()) { prompt.hidden = false; holder.hidden = true; return; }
    fetch(holder.getAttribute("data-fragment"), { headers: headers(false), credentials: "same-origin" })
      .then(function (response) {
        if (response.status === 401) {
          window.sessionStorage.removeItem(TOKEN_KEY);
          byId("auth-error").textContent = "That token was refused.";
          prompt.hidden = false;
          holder.hidden = true;
          return null;
        }
        return response.text();
      })
      .then(function (html) {
        if (html === null) { return; }
        prompt.hidden = true;
        holder.hidden = false;
        holder.innerHTML = html;
        var fragment = holder.querySelector(".fragment");
        if (fragment && fragment.getAttribute("data-title")) { document.title = fragment.getAttribute("data-title"); }
        bindActions(holder);
      })
      .catch(function (error) {
        byId("auth-error").textContent = "Cannot reach Causeway: " + error.message;
        prompt.hidden = false;
      });
  }

  function bindPrompt() {
    var submit = byId("token-submit");
    if (!submit) { return; }
    var input = byId("token");
    var go = function () {
      var value = input.value.trim();
      if (!value) { return; }
      window.sessionStorage.setItem(TOKEN_KEY, value);
      input.value = "";
      byId("auth-error").textContent = "";
      loadFragment();
    };
    submit.addEventListener("click", go);
    input.addEventListener("keydown", function (event) { if (event.key === "Enter") { go(); } });
  }

  function reload() {
    if (needsToken()) { loadFragment(); } else { window.location.reload(); }
  }

  function say(text, isError) {
    var status = byId("action-status");
    if (!status) { return; }
    status.textContent = text;
    status.className = isError ? "error" : "ok";
  }

  // Actions are fetch() calls with a JSON body: the API refuses cross-site writes, and a JSON
  // content type cannot be sent by a plain cross-site form.
  function post(path, body) {
    return fetch(path, {
      method: "POST",
      headers: headers(true),
      credentials: "same-origin",
      body: JSON.stringify(body)
    }).then(function (response) {
      return response.json().catch(function () { return {}; }).then(function (json) {
        if (!response.ok) {
          var message = json && json.error ? json.error.message : ("HTTP " + response.status);
          throw new Error(message);
        }
        return json;
      });
    });
  }

  function bindActions(root) {
    var panel = root.querySelector("#actions");
    if (!panel) { return; }
    var id = panel.getAttribute("data-incident");
    var base = "/api/v1/incidents/" + encodeURIComponent(id);
    panel.querySelectorAll("button[data-action]").forEach(function (button) {
      button.addEventListener("click", function () {
        var action = button.getAttribute("data-action");
        var request;
        if (action === "reroute") {
          var team = byId("reroute-team").value;
          var reason = byId("reroute-reason").value.trim();
          if (!team) { say("Pick a team.", true); return; }
          request = post(base + "/reroute", { team: team, reason: reason, by: "ui" });
        } else {
          request = post(base + "/" + action, { by: "ui" });
        }
        button.disabled = true;
        say("Sending…", false);
        request
          .then(function () { say("Done: " + action + ".", false); setTimeout(reload, 400); })
          .catch(function (error) { say("Could not " + action + ": " + error.message, true); })
          .then(function () { button.disabled = false; });
      });
    });
  }

  document.addEventListener("DOMContentLoaded", function () {
    if (needsToken()) {
      bindPrompt();
      loadFragment();
    } else {
      bindActions(document);
    }
  });
})();
