/* The admin page's curation section: FAQ, feedback, confirmed answers (API: bot/admin_curation.py).
 * Kept apart from admin.js; it shares only the login (the token admin.js keeps in sessionStorage)
 * and loads whenever the page's main part is shown. Text reaches the DOM through textContent only. */
(function () {
  "use strict";

  var TOKEN_KEY = "policybot.admin.token";
  var API = document.body.getAttribute("data-api");
  var main = document.getElementById("main");
  if (!main || !document.getElementById("curation")) return;

  function $(id) { return document.getElementById(id); }

  function el(tag, text, cls) {
    var node = document.createElement(tag);
    if (text !== undefined && text !== null) node.textContent = String(text);
    if (cls) node.className = cls;
    return node;
  }

  function button(text, onClick, cls) {
    var node = el("button", text, cls);
    node.type = "button";
    node.addEventListener("click", onClick);
    return node;
  }

  function say(id, text, ok) {
    $(id).textContent = text || "";
    $(id).className = "msg " + (ok ? "ok" : "error");
  }

  function api(method, path, body) {
    var init = {method: method, cache: "no-store",
                headers: {"Authorization": "Bearer " + (sessionStorage.getItem(TOKEN_KEY) || "")}};
    if (body !== undefined) {
      init.headers["Content-Type"] = "application/json";
      init.body = JSON.stringify(body);
    }
    return fetch(API + path, init).then(function (response) {
      return response.json().catch(function () { return {}; }).then(function (data) {
        if (!response.ok) throw new Error(data.error || ("HTTP " + response.status));
        return data;
      });
    });
  }

  function fill(list, rows, render, empty) {
    list.textContent = "";
    rows.forEach(function (row) { list.appendChild(render(row)); });
    if (!rows.length) list.appendChild(el("li", empty, "muted"));
  }

  function load() {
    return api("GET", "/curation").then(function (data) {
      fill($("faq-list"), data.faq, faqRow, "还没有常见问题。");
      fill($("cur-unanswered"), data.unanswered, function (u) {
        var li = el("li", u.question + "（" + u.count + " 次）");
        li.appendChild(button("写回答", function () { startFaq(u.question); }));
        li.appendChild(button("选条目", function () { findItems(u.question, "unanswered"); }));
        return li;
      }, "暂无。");
      fill($("cur-unhelpful"), data.unhelpful, function (r) {
        var li = el("li", r.question + (r.ref ? " → " + r.ref + " " + (r.item_title || "") : "（未回答）"));
        li.appendChild(button("选条目", function () { findItems(r.question, "unhelpful"); }));
        li.appendChild(button("写回答", function () { startFaq(r.question); }));
        return li;
      }, "暂无。");
      fill($("cur-worst"), data.worst_items, function (w) {
        return el("li", (w.ref || w.doc_id + " " + w.item) + " " + (w.item_title || "") + "：" +
                  w.unhelpful + " / " + w.ratings + " 个评价为“没用”");
      }, "暂无评价。");
      fill($("confirmed-list"), data.confirmed, function (c) {
        var li = el("li", "“" + c.question + "” → " + c.doc_id + " 第 " + c.item + " 条");
        li.appendChild(button("删除", function () {
          api("DELETE", "/confirmed/" + c.id).then(load);
        }, "danger"));
        return li;
      }, "还没有确认的答案。");
    }).catch(function (error) { say("faq-msg", "读取失败：" + error.message, false); });
  }

  function faqRow(entry) {
    var li = el("li", entry.question + " —— " + entry.answer + "（" + (entry.created_iso || "").slice(0, 10) + "）");
    li.appendChild(button("删除", function () {
      api("DELETE", "/faq/" + entry.id).then(function () {
        say("faq-msg", "已删除。", true);
        load();
      }).catch(function (error) { say("faq-msg", error.message, false); });
    }, "danger"));
    return li;
  }

  function startFaq(question) {
    $("faq-q").value = question;
    $("faq-a").focus();
    $("faq-form").scrollIntoView({block: "center"});
  }

  function findItems(question, source) {
    $("confirm-q").value = question;
    $("confirm-form").dataset.source = source;
    var list = $("confirm-hits");
    list.textContent = "";
    say("confirm-msg", "");
    api("GET", "/candidates?q=" + encodeURIComponent(question)).then(function (data) {
      fill(list, data.hits, function (hit) {
        var li = el("li", (hit.ref || hit.item) + " 《" + hit.document + "》" + hit.item_title + "：" +
                    (hit.sentences[0] || ""));
        li.appendChild(button("就是这条", function () { confirm(question, hit, source); }, "primary"));
        return li;
      }, "没有找到条目。");
      $("confirm-form").scrollIntoView({block: "center"});
    }).catch(function (error) { say("confirm-msg", error.message, false); });
  }

  function confirm(question, hit, source, msgId) {
    var where = msgId || "confirm-msg";
    return api("POST", "/confirmed", {question: question, doc_id: hit.doc_id, item: hit.item, source: source})
      .then(function (record) {
        say(where, "已确认：“" + question + "” → 《" + record.document + "》" + record.item_title, true);
        $("confirm-hits").textContent = "";
        load();
      }).catch(function (error) { say(where, error.message, false); });
  }

  // The test box (admin.js, loaded after this file) offers 就是这条 under each hit of a test question.
  window.PolicybotCuration = {
    confirmItem: function (question, hit) { return confirm(question, hit, "test", "ask-msg"); }
  };

  $("faq-form").addEventListener("submit", function (event) {
    event.preventDefault();
    api("POST", "/faq", {question: $("faq-q").value, answer: $("faq-a").value}).then(function (entry) {
      say("faq-msg", "已添加常见问题 " + entry.id + "，立即生效。", true);
      $("faq-q").value = "";
      $("faq-a").value = "";
      load();
    }).catch(function (error) { say("faq-msg", "添加失败：" + error.message, false); });
  });

  $("confirm-form").addEventListener("submit", function (event) {
    event.preventDefault();
    findItems($("confirm-q").value.trim(), $("confirm-form").dataset.source || "test");
    $("confirm-form").dataset.source = "test";
  });

  // admin.js shows #main after a login: load then, and whenever it is shown again.
  new MutationObserver(function () { if (!main.hidden) load(); })
    .observe(main, {attributes: true, attributeFilter: ["hidden"]});
  if (!main.hidden) load();
})();
