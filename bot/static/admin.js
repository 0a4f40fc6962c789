/* The admin page's script: keeps the admin token in sessionStorage, sends it as a bearer
 * header to the /admin API, and renders the answers. Everything from the server or the
 * user reaches the DOM through textContent only, never as HTML. */
(function () {
  "use strict";

  var TOKEN_KEY = "policybot.admin.token";
  var POLL_MS = 500;
  var API = document.body.getAttribute("data-api");
  var ASK = document.body.getAttribute("data-ask");
  var MAX_UPLOAD_MB = Number(document.body.getAttribute("data-max-upload-mb"));
  var STATUS = {served: "已上线", "new": "新增，待重建索引", changed: "已更新，待重建索引"};
  var STAGES = {queued: "排队中", parse: "解析文件", embed: "计算向量", bm25: "建立关键词索引",
                publish: "发布", done: "完成"};
  var polling = null;

  function $(id) { return document.getElementById(id); }

  function el(tag, text, cls) {
    var node = document.createElement(tag);
    if (text !== undefined && text !== null) node.textContent = String(text);
    if (cls) node.className = cls;
    return node;
  }

  function clear(node) { while (node.firstChild) node.removeChild(node.firstChild); }

  function say(id, text, ok) {
    var node = $(id);
    node.textContent = text || "";
    node.className = "msg " + (ok ? "ok" : "error");
  }

  function token() { return sessionStorage.getItem(TOKEN_KEY) || ""; }

  function api(method, path, body) {
    var init = {method: method, headers: {}, cache: "no-store"};
    // The token goes to the admin API only, not to /api/ask.
    if (path.indexOf(API + "/") === 0) init.headers["Authorization"] = "Bearer " + token();
    if (body instanceof FormData) {
      init.body = body;
    } else if (body !== undefined) {
      init.headers["Content-Type"] = "application/json";
      init.body = JSON.stringify(body);
    }
    return fetch(path, init).then(function (response) {
      return response.json().catch(function () {
        return {error: response.status + " " + response.statusText};
      }).then(function (data) {
        if (response.status === 401 && init.headers.Authorization) logout("令牌无效，请重新登录。");
        if (!response.ok) {
          var error = new Error(data.error || response.statusText);
          error.data = data;
          throw error;
        }
        return data;
      });
    });
  }

  function when(iso) {
    var date = new Date(iso);
    return isNaN(date) ? iso : date.toLocaleString("zh-CN", {hour12: false});
  }

  // -- login ---------------------------------------------------------------------------------

  function login(event) {
    event.preventDefault();
    sessionStorage.setItem(TOKEN_KEY, $("token").value.trim());
    $("token").value = "";
    start();
  }

  function logout(message) {
    sessionStorage.removeItem(TOKEN_KEY);
    if (polling) clearTimeout(polling);
    $("main").hidden = true;
    $("logout").hidden = true;
    $("login").hidden = false;
    say("login-msg", message || "", false);
  }

  function start() {
    if (!token()) return;
    api("GET", API + "/documents").then(function (state) {
      $("login").hidden = true;
      $("main").hidden = false;
      $("logout").hidden = false;
      say("login-msg", "");
      showLibrary(state);
      loadVersions();
      loadStats();
      resumeJob();
    }).catch(function (error) {
      var reason = error.data && error.data.status === 401 ? "令牌不正确。" : error.message;
      if ($("login").hidden === false) say("login-msg", "登录失败：" + reason, false);
    });
  }

  // -- library -------------------------------------------------------------------------------

  function loadLibrary() {
    return api("GET", API + "/documents").then(showLibrary).catch(function (error) {
      say("library-msg", error.message, false);
    });
  }

  function showLibrary(state) {
    var body = $("docs-body");
    clear(body);
    state.documents.forEach(function (doc) {
      var row = el("tr");
      row.appendChild(el("td", "《" + doc.title + "》"));
      row.appendChild(el("td", doc.year || "—", "num"));
      row.appendChild(el("td", doc.encoding ? doc.format + "（" + doc.encoding + "）" : doc.format));
      row.appendChild(el("td", doc.items, "num"));
      row.appendChild(el("td", doc.sentences, "num"));
      row.appendChild(el("td", when(doc.added)));
      var status = el("td");
      status.appendChild(el("span", STATUS[doc.status] || doc.status, "badge " + doc.status));
      row.appendChild(status);
      var actions = el("td");
      var remove = el("button", "删除", "danger");
      remove.type = "button";
      remove.addEventListener("click", function () { removeDocument(doc); });
      actions.appendChild(remove);
      row.appendChild(actions);
      body.appendChild(row);
    });
    if (!state.documents.length) {
      var empty = el("tr");
      var cell = el("td", "文件库为空：请先上传文件。", "muted");
      cell.colSpan = 8;
      empty.appendChild(cell);
      body.appendChild(empty);
    }
    $("removed").textContent = state.removed.length ? "已从文件库删除、但当前索引仍在使用：" +
      state.removed.map(function (d) { return "《" + d.title + "》"; }).join("") : "";
    $("library-status").textContent = "共 " + state.documents.length + " 个文件" +
      (state.reindex_needed ? "；有变更尚未生效，请重建索引。" : "；索引已是最新。");
    $("version").textContent = state.version || "（尚无索引）";
  }

  function removeDocument(doc) {
    if (!window.confirm("从文件库删除《" + doc.title + "》？重建索引后将不再用于回答。")) return;
    api("DELETE", API + "/documents/" + encodeURIComponent(doc.id)).then(function () {
      say("library-msg", "已删除《" + doc.title + "》。", true);
      loadLibrary();
    }).catch(function (error) { say("library-msg", "删除失败：" + error.message, false); });
  }

  function upload(event) {
    event.preventDefault();
    var file = $("file").files[0];
    if (!file) return;
    if (file.size > MAX_UPLOAD_MB * 1024 * 1024) {
      // A server refusing a big body may just drop the connection; say why before sending it.
      say("upload-msg", "文件超过 " + MAX_UPLOAD_MB + " MB，无法上传。", false);
      return;
    }
    var form = new FormData();
    form.append("file", file, file.name);
    if ($("doc-title").value.trim()) form.append("title", $("doc-title").value.trim());
    if ($("doc-year").value.trim()) form.append("year", $("doc-year").value.trim());
    $("upload-btn").disabled = true;
    say("upload-msg", "正在上传并解析……", true);
    api("POST", API + "/documents", form).then(function (doc) {
      say("upload-msg", (doc.replaced ? "已替换" : "已添加") + "《" + doc.title + "》，共 " + doc.items +
          " 条。重建索引后生效。", true);
      $("upload-form").reset();
      loadLibrary();
    }).catch(function (error) {
      say("upload-msg", "上传失败：" + error.message, false);
    }).then(function () { $("upload-btn").disabled = false; });
  }

  // -- index jobs and versions ---------------------------------------------------------------

  function reindex() {
    $("reindex-btn").disabled = true;
    say("index-msg", "");
    api("POST", API + "/reindex").then(function (data) {
      watch(data.job);
    }).catch(function (error) {
      if (error.data && error.data.job) return watch(error.data.job);
      $("reindex-btn").disabled = false;
      say("index-msg", "无法开始重建：" + error.message, false);
    });
  }

  function resumeJob() {
    api("GET", API + "/jobs").then(function (data) {
      var last = data.jobs[0];
      if (last && (last.state === "queued" || last.state === "running")) watch(last.job);
    }).catch(function () { /* the job list only resumes watching; the page works without it */ });
  }

  function watch(jobId) {
    $("reindex-btn").disabled = true;
    $("job-progress").hidden = false;
    api("GET", API + "/jobs/" + encodeURIComponent(jobId)).then(function (job) {
      showJob(job);
      if (job.state === "queued" || job.state === "running") {
        polling = setTimeout(function () { watch(jobId); }, POLL_MS);
        return;
      }
      $("reindex-btn").disabled = false;
      if (job.state === "done") {
        say("index-msg", "重建完成，已发布版本 " + job.version + "。", true);
        loadLibrary();
        loadVersions();
      } else {
        say("index-msg", "重建失败：" + job.error, false);
      }
    }).catch(function (error) {
      $("reindex-btn").disabled = false;
      say("index-msg", "无法读取任务状态：" + error.message, false);
    });
  }

  function showJob(job) {
    $("job-progress").value = job.progress;
    var stage = STAGES[job.stage] || job.stage;
    var count = job.total > 1 ? "（" + job.done + "/" + job.total + "）" : "";
    var state = {queued: "排队中", running: "进行中：" + stage + count, done: "已完成", failed: "失败"}[job.state];
    $("job-status").textContent = state + " " + Math.round(job.progress * 100) + "%";
  }

  function loadVersions() {
    api("GET", API + "/versions").then(function (data) {
      var select = $("versions");
      clear(select);
      data.versions.forEach(function (v) {
        var label = v.version + (v.version === data.current ? "（当前）" : "") + (v.intact ?
          " · " + v.documents + " 个文件 · " + v.items + " 条" : " · 已损坏");
        var option = el("option", label);
        option.value = v.version;
        option.disabled = !v.intact;
        select.appendChild(option);
      });
      $("version").textContent = data.served || "（尚无可用索引）";
      var health = $("index-health");
      health.hidden = !data.damaged.length;
      health.textContent = data.damaged.map(function (d) {
        return "索引版本 " + d.version + " 已损坏（" + d.problem + "）。";
      }).join("") + (data.damaged.length ? (data.served ? "机器人正在使用完好的版本 " + data.served +
        "；请重建索引或回滚到完好的版本。" : "没有完好的版本：请重建索引。") : "");
    }).catch(function (error) { say("index-msg", error.message, false); });
  }

  function rollback() {
    var version = $("versions").value;
    if (!version) return;
    api("POST", API + "/rollback", {version: version}).then(function (data) {
      say("index-msg", "已切换到版本 " + data.version + "（原为 " + (data.previous || "—") + "）。", true);
      loadLibrary();
      loadVersions();
    }).catch(function (error) { say("index-msg", "回滚失败：" + error.message, false); });
  }

  // -- test box and statistics ---------------------------------------------------------------

  function ask(event) {
    event.preventDefault();
    var question = $("ask-q").value.trim();
    if (!question) return;
    say("ask-msg", "");
    $("ask-btn").disabled = true;
    api("POST", ASK, {question: question}).then(function (data) {
      showAnswer(data);
      loadStats();  // the question is in the log now
    }).catch(function (error) {
      say("ask-msg", "提问失败：" + error.message, false);
    }).then(function () { $("ask-btn").disabled = false; });
  }

  function showAnswer(data) {
    $("ask-result").hidden = false;
    $("ask-answer").textContent = data.answer;
    $("ask-answer").className = "answer" + (data.abstained ? " abstained" : "");
    $("ask-meta").textContent = (data.abstained ? "未找到答案（以下为最接近的条目）" : "已回答") +
      " · 置信度 " + data.confidence.toFixed(2);
    var body = $("ask-hits");
    clear(body);
    data.hits.forEach(function (hit) {
      var row = el("tr", null, "hit");
      row.appendChild(el("td", "《" + hit.document + "》" + hit.section + " › " + hit.item + ". " + hit.item_title,
                         "cite"));
      row.appendChild(el("td", hit.score.toFixed(3), "num"));
      row.appendChild(el("td", hit.sentences.join("")));
      body.appendChild(row);
    });
  }

  function loadStats() {
    api("GET", API + "/stats").then(function (data) {
      var rate = data.answer_rate === null ? "—" : Math.round(data.answer_rate * 100) + "%";
      $("stats-summary").textContent = "提问 " + data.questions + " 次，其中检索 " + data.searches +
        " 次，回答率 " + rate + "。";
      var bars = $("stats-bars");
      clear(bars);
      var most = Math.max.apply(null, data.days.map(function (d) { return d.questions; }).concat([1]));
      data.days.forEach(function (d) {
        var bar = el("div");
        bar.style.height = (100 * d.questions / most) + "%";
        bar.title = d.date + "：" + d.questions + " 次，未回答 " + d.unanswered;
        bars.appendChild(bar);
      });
      fill("stats-unanswered", data.unanswered, function (u) { return u.question + "（" + u.count + " 次）"; },
           "没有未回答的问题。");
      fill("stats-items", data.top_items, function (i) {
        var name = i.title ? "《" + i.title + "》" : i.document;
        var item = i.item_title ? " " + i.item_number + ". " + i.item_title : " " + (i.item || "");
        return name + item + "（" + i.count + " 次）";
      }, "暂无。");
    }).catch(function (error) { $("stats-summary").textContent = "统计不可用：" + error.message; });
  }

  function fill(id, rows, text, empty) {
    var list = $(id);
    clear(list);
    rows.forEach(function (row) { list.appendChild(el("li", text(row))); });
    if (!rows.length) list.appendChild(el("li", empty, "muted"));
  }

  $("login-form").addEventListener("submit", login);
  $("logout").addEventListener("click", function () { logout(""); });
  $("upload-form").addEventListener("submit", upload);
  $("reindex-btn").addEventListener("click", reindex);
  $("rollback-btn").addEventListener("click", rollback);
  $("ask-form").addEventListener("submit", ask);
  start();
}());
