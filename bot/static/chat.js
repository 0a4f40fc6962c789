// The chat page: asks /api/ask, shows the newest turn at the bottom, opens a cited item in place
// (/api/item/<ref>), rates answers (/api/feedback) and keeps the conversation in localStorage.
(function () {
  "use strict";
  var STORE = "policybot.chat.v1";
  var KEEP = 50; // turns kept across reloads
  var REF = /(回复\s*)([A-Za-z]{1,3}\d{1,4})/g; // the references every answer names
  var form = document.getElementById("ask");
  var input = document.getElementById("question");
  var log = document.getElementById("log");
  var suggest = document.getElementById("suggest");
  var clear = document.getElementById("clear");
  var turns = load();

  function load() {
    try {
      var saved = JSON.parse(localStorage.getItem(STORE) || "[]");
      return Array.isArray(saved) ? saved : [];
    } catch (e) {
      return []; // storage off or damaged: start a fresh conversation
    }
  }

  function save() {
    try {
      localStorage.setItem(STORE, JSON.stringify(turns.slice(-KEEP)));
    } catch (e) { /* private mode or full: the page still works, only without history */ }
  }

  function el(tag, cls, text) {
    var node = document.createElement(tag);
    if (cls) node.className = cls;
    // Text only, never parsed as HTML: answers echo what users typed.
    if (text !== undefined) node.textContent = text;
    return node;
  }

  // The answer text with each "回复 HY12" turned into a button that opens that item here.
  function answerNode(data) {
    var node = el("div", "a" + (data.abstained ? " abstained" : ""));
    var text = data.answer || "", last = 0, match;
    REF.lastIndex = 0;
    while ((match = REF.exec(text)) !== null) {
      node.appendChild(document.createTextNode(text.slice(last, match.index) + match[1]));
      var button = el("button", "ref", match[2]);
      button.type = "button";
      button.dataset.ref = match[2];
      button.title = "查看全文";
      node.appendChild(button);
      last = match.index + match[0].length;
    }
    node.appendChild(document.createTextNode(text.slice(last)));
    return node;
  }

  function rateNode(turn) {
    var box = el("div", "rate");
    box.appendChild(document.createTextNode("有帮助吗？ "));
    [[true, "👍", "有用"], [false, "👎", "没用"]].forEach(function (pair) {
      var button = el("button", "", pair[1] + " " + pair[2]); // words too: not every phone has emoji
      button.type = "button";
      button.setAttribute("aria-label", pair[2]);
      button.setAttribute("aria-pressed", String(turn.helpful === pair[0]));
      button.addEventListener("click", function () { rate(turn, pair[0], box); });
      box.appendChild(button);
    });
    var note = el("span", "note", turn.helpful === undefined ? "" : "谢谢反馈");
    box.appendChild(note);
    return box;
  }

  function render(turn) {
    var node = el("div", "turn");
    node.appendChild(el("div", "q", turn.q));
    if (turn.data) {
      node.appendChild(answerNode(turn.data));
      if (turn.data.answer_id) node.appendChild(rateNode(turn));
    } else if (turn.error) {
      node.appendChild(el("div", "a error", "出错了：" + turn.error));
    } else {
      node.appendChild(el("div", "a pending", "正在查找…"));
    }
    return node;
  }

  function show(turn, old) {
    var node = render(turn);
    if (old) log.replaceChild(node, old); else log.appendChild(node);
    refresh();
    return node;
  }

  function refresh() {
    suggest.hidden = turns.length > 0 || !suggest.querySelector("button");
    clear.hidden = turns.length === 0;
  }

  function scrollDown(node) {
    node.scrollIntoView({block: "end"});
  }

  function post(url, body) {
    return fetch(url, {
      method: "POST",
      headers: {"Content-Type": "application/json"},
      credentials: "same-origin",
      body: JSON.stringify(body)
    }).then(function (response) {
      return response.json().catch(function () { return {}; }).then(function (data) {
        if (!response.ok) throw new Error(data.error || ("HTTP " + response.status));
        return data;
      });
    });
  }

  function ask(question) {
    var turn = {q: question};
    turns.push(turn);
    var node = show(turn);
    scrollDown(node);
    post("/api/ask", {question: question}).then(function (data) {
      turn.data = data;
    }).catch(function (error) {
      turn.error = error.message;
    }).then(function () {
      save();
      scrollDown(show(turn, node));
    });
  }

  function rate(turn, helpful, box) {
    post("/api/feedback", {answer_id: turn.data.answer_id, helpful: helpful}).then(function () {
      turn.helpful = helpful;
      save();
      box.parentNode.replaceChild(rateNode(turn), box);
    }).catch(function (error) {
      box.querySelector(".note").textContent = "反馈未送出：" + error.message;
    });
  }

  // A click on a reference opens the item under the answer; a second click closes it.
  log.addEventListener("click", function (event) {
    var button = event.target.closest("button.ref");
    if (!button) return;
    var answer = button.closest(".a");
    var open = answer.parentNode.querySelector('.item[data-ref="' + button.dataset.ref + '"]');
    if (open) { open.remove(); return; }
    var box = el("div", "item", "正在打开 " + button.dataset.ref + "…");
    box.dataset.ref = button.dataset.ref;
    answer.insertAdjacentElement("afterend", box);
    fetch("/api/item/" + encodeURIComponent(button.dataset.ref), {credentials: "same-origin"})
      .then(function (response) {
        return response.json().then(function (data) {
          if (!response.ok) throw new Error(data.error || ("HTTP " + response.status));
          box.textContent = data.answer;
        });
      }).catch(function (error) {
        box.textContent = "打不开这一条：" + error.message;
      });
  });

  suggest.addEventListener("click", function (event) {
    if (event.target.tagName === "BUTTON") ask(event.target.textContent);
  });

  clear.addEventListener("click", function () {
    turns = [];
    save();
    log.textContent = "";
    refresh();
  });

  form.addEventListener("submit", function (event) {
    event.preventDefault();
    var question = input.value.trim();
    if (!question) return;
    input.value = "";
    ask(question);
  });

  input.addEventListener("keydown", function (event) {
    if (event.key === "Enter" && !event.shiftKey && !event.isComposing) {
      event.preventDefault();
      form.requestSubmit();
    }
  });

  turns.forEach(function (turn) {
    if (!turn.data && !turn.error) turn.error = "页面刷新前没有收到回答";
    show(turn);
  });
  refresh();
  if (log.lastChild) scrollDown(log.lastChild);
})();
