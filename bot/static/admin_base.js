/* What every script of the admin page shares, as window.PolicybotAdmin: the admin token
 * (kept in sessionStorage), api() that sends it as a bearer header and turns an error body
 * into an Error carrying the server's Chinese message, and small DOM helpers. Everything
 * from the server or the user reaches the DOM through textContent only, never as HTML. */
(function () {
  "use strict";

  var TOKEN_KEY = "policybot.admin.token";
  var API = document.body.getAttribute("data-api");
  var admin = window.PolicybotAdmin = {API: API, onLogout: []};

  admin.$ = function (id) { return document.getElementById(id); };

  admin.el = function (tag, text, cls) {
    var node = document.createElement(tag);
    if (text !== undefined && text !== null) node.textContent = String(text);
    if (cls) node.className = cls;
    return node;
  };

  admin.clear = function (node) { while (node.firstChild) node.removeChild(node.firstChild); };

  /* A table cell that names its column: on a phone each row is a card and the cell shows the name. */
  admin.cell = function (row, label, text, cls) {
    var td = admin.el("td", text, cls);
    td.setAttribute("data-label", label);
    row.appendChild(td);
    return td;
  };

  admin.say = function (id, text, ok) {
    var node = admin.$(id);
    node.textContent = text || "";
    node.className = "msg " + (ok ? "ok" : "error");
  };

  admin.token = function () { return sessionStorage.getItem(TOKEN_KEY) || ""; };
  admin.setToken = function (value) { sessionStorage.setItem(TOKEN_KEY, value); };
  admin.dropToken = function () { sessionStorage.removeItem(TOKEN_KEY); };

  /* Call the admin API; resolves with the JSON body, rejects with an Error whose message is
   * the server's (Chinese) error, or a Chinese sentence when the server could not be reached. */
  admin.api = function (method, path, body) {
    var init = {method: method, headers: {}, cache: "no-store"};
    if (path.indexOf(API + "/") === 0) init.headers["Authorization"] = "Bearer " + admin.token();
    if (body instanceof FormData) {
      init.body = body;
    } else if (body !== undefined) {
      init.headers["Content-Type"] = "application/json";
      init.body = JSON.stringify(body);
    }
    return fetch(path, init).catch(function () {
      throw new Error("无法连接服务器：请检查网络后重试。");
    }).then(function (response) {
      return response.json().catch(function () {
        return {error: response.status === 413 ? "文件太大，超过了上传上限，无法上传。" :
                "服务器返回了无法识别的内容（HTTP " + response.status + "）。"};
      }).then(function (data) {
        if (response.status === 401 && init.headers.Authorization) admin.logout("令牌无效，请重新登录。");
        if (!response.ok) {
          var error = new Error(data.error || "请求失败（HTTP " + response.status + "）。");
          error.data = data;
          throw error;
        }
        return data;
      });
    });
  };

  admin.logout = function (message) {
    admin.dropToken();
    admin.onLogout.forEach(function (hook) { hook(); });
    admin.$("main").hidden = true;
    admin.$("logout").hidden = true;
    admin.$("login").hidden = false;
    admin.say("login-msg", message || "", false);
  };

  function two(n) { return (n < 10 ? "0" : "") + n; }

  /* "12月2日 08:24" (this year) or "2025年12月2日 08:24", in the browser's time zone. */
  admin.when = function (iso) {
    var date = new Date(iso);
    if (!iso || isNaN(date)) return iso || "—";
    var year = date.getFullYear() === new Date().getFullYear() ? "" : date.getFullYear() + "年";
    return year + (date.getMonth() + 1) + "月" + date.getDate() + "日 " + two(date.getHours()) + ":" +
      two(date.getMinutes());
  };

  /* "11/3" for the chart's axis, from "2026-11-03". */
  admin.day = function (isoDate) {
    var parts = String(isoDate).split("-");
    return parts.length === 3 ? Number(parts[1]) + "/" + Number(parts[2]) : isoDate;
  };
}());
