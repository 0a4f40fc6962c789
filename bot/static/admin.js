/* The admin page's main script: login, the document library, uploads with a preview of how
 * the file was split (title and year editable before it is added), the test box and the
 * statistics. Helpers come from admin_base.js, the index part from admin_index.js. */
(function () {
  "use strict";

  var A = window.PolicybotAdmin;
  var $ = A.$, el = A.el, cell = A.cell;
  var MAX_UPLOAD_MB = Number(document.body.getAttribute("data-max-upload-mb"));
  var STATUS = {served: "已上线", "new": "新增，待重建索引", changed: "已更新，待重建索引"};
  var previewed = null;  // the preview of the chosen file: its parsed title and year

  // -- login ---------------------------------------------------------------------------------

  function login(event) {
    event.preventDefault();
    A.setToken($("token").value.trim());
    $("token").value = "";
    start();
  }

  function start() {
    if (!A.token()) return;
    A.api("GET", A.API + "/documents").then(function (state) {
      $("login").hidden = true;
      $("main").hidden = false;
      $("logout").hidden = false;
      A.say("login-msg", "");
      showLibrary(state);
      A.loadVersions();
      loadStats();
      A.resumeJob();
    }).catch(function (error) {
      var reason = error.data && error.data.status === 401 ? "令牌不正确。" : error.message;
      if ($("login").hidden === false) A.say("login-msg", "登录失败：" + reason, false);
    });
  }

  // -- library -------------------------------------------------------------------------------

  A.loadLibrary = function () {
    return A.api("GET", A.API + "/documents").then(showLibrary).catch(function (error) {
      A.say("library-msg", error.message, false);
    });
  };

  function showLibrary(state) {
    var body = $("docs-body");
    A.clear(body);
    state.documents.forEach(function (doc) { body.appendChild(documentRow(doc)); });
    if (!state.documents.length) {
      var empty = el("tr");
      var note = el("td", "文件库为空：请先上传文件。", "muted wide");
      note.colSpan = 8;
      empty.appendChild(note);
      body.appendChild(empty);
    }
    $("removed").textContent = state.removed.length ? "已从文件库删除、但当前索引仍在使用：" +
      state.removed.map(function (d) { return "《" + d.title + "》"; }).join("") : "";
    $("library-status").textContent = "共 " + state.documents.length + " 个文件" +
      (state.reindex_needed ? "；有变更尚未生效，请重建索引。" : "；索引已是最新。");
  }

  function documentRow(doc) {
    var row = el("tr");
    cell(row, "标题", "《" + doc.title + "》", "lead");
    cell(row, "年份", doc.year || "—", "num");
    cell(row, "格式", doc.encoding ? doc.format + "（" + doc.encoding + "）" : doc.format);
    cell(row, "条目", doc.items, "num");
    cell(row, "句子", doc.sentences, "num");
    cell(row, "添加时间", A.when(doc.added));
    cell(row, "状态").appendChild(el("span", STATUS[doc.status] || doc.status, "badge " + doc.status));
    var remove = el("button", "删除", "danger");
    remove.type = "button";
    remove.addEventListener("click", function () { removeDocument(doc); });
    cell(row, "").appendChild(remove);
    return row;
  }

  function removeDocument(doc) {
    if (!window.confirm("从文件库删除《" + doc.title + "》？重建索引后将不再用于回答。")) return;
    A.api("DELETE", A.API + "/documents/" + encodeURIComponent(doc.id)).then(function () {
      A.say("library-msg", "已删除《" + doc.title + "》。", true);
      A.loadLibrary();
    }).catch(function (error) { A.say("library-msg", "删除失败：" + error.message, false); });
  }

  // -- upload: preview first, then add ---------------------------------------------------------

  function chosenFile() {
    var file = $("file").files[0];
    if (file && file.size > MAX_UPLOAD_MB * 1024 * 1024) {
      // A server refusing a big body may just drop the connection; say why before sending it.
      A.say("upload-msg", "文件超过 " + MAX_UPLOAD_MB + " MB，无法上传。", false);
      return null;
    }
    return file || null;
  }

  function preview() {
    closePreview();
    var file = chosenFile();
    $("file-name").textContent = file ? file.name : "未选择文件";
    if (!file) return;
    var form = new FormData();
    form.append("file", file, file.name);
    A.say("upload-msg", "正在解析 " + file.name + "……", true);
    A.api("POST", A.API + "/documents/preview", form).then(function (data) {
      A.say("upload-msg", "");
      showPreview(data);
    }).catch(function (error) { A.say("upload-msg", "无法预览：" + error.message, false); });
  }

  function showPreview(data) {
    previewed = data;
    $("preview").hidden = false;
    $("preview-name").textContent = data.filename;
    $("preview-summary").textContent = "解析出 " + data.sections + " 个部分、" + data.items + " 个条目、" +
      data.sentences + " 个句子" + (data.encoding ? "（文字编码 " + data.encoding + "）" : "") + "。";
    var warning = data.duplicate_of ? "这份文件与文件库中的《" + data.duplicate_of.title + "》内容完全相同，无需重复上传。" :
      !data.replaces ? "" : data.replaces.same_content ? "文件库中已有这份《" + data.replaces.title +
      "》（内容相同）：只有改了标题或年份，确认才会更新它。" :
      "文件库中已有同名文件《" + data.replaces.title + "》：确认后将替换它（旧文件会存档）。";
    $("preview-warning").textContent = warning;
    $("preview-warning").hidden = !warning;
    $("upload-btn").disabled = Boolean(data.duplicate_of);
    $("doc-title").value = data.title || "";
    $("doc-year").value = data.year || "";
    showOutline(data.outline);
  }

  function showOutline(sections) {
    var box = $("preview-outline");
    A.clear(box);
    sections.forEach(function (section, n) {
      var part = el("details");
      part.open = n === 0;
      part.appendChild(el("summary", section.heading + "（" + section.items.length + " 条）"));
      var items = el("ol");
      section.items.forEach(function (item) {
        var li = el("li", item.label + " " + item.title);
        var sentences = el("ul", null, "sentences");
        item.sentences.forEach(function (text) { sentences.appendChild(el("li", text)); });
        li.appendChild(sentences);
        items.appendChild(li);
      });
      part.appendChild(items);
      box.appendChild(part);
    });
  }

  function resetUpload() {
    $("upload-form").reset();
    $("file-name").textContent = "未选择文件";
    closePreview();
  }

  function closePreview() {
    previewed = null;
    $("preview").hidden = true;
    A.clear($("preview-outline"));
  }

  function upload(event) {
    event.preventDefault();
    var file = chosenFile();
    if (!file || !previewed) return;
    var form = new FormData();
    form.append("file", file, file.name);
    // Only what the admin changed is sent: an override stays unset while it equals the parse.
    var title = $("doc-title").value.trim(), year = $("doc-year").value.trim();
    if (title && title !== previewed.title) form.append("title", title);
    if (year !== String(previewed.year || "")) form.append("year", year);
    $("upload-btn").disabled = true;
    A.say("upload-msg", "正在加入文件库……", true);
    A.api("POST", A.API + "/documents", form).then(function (doc) {
      A.say("upload-msg", (doc.replaced ? "已替换" : "已添加") + "《" + doc.title + "》" +
            (doc.year ? "（" + doc.year + " 年）" : "") + "，共 " + doc.items + " 条。重建索引后生效。", true);
      resetUpload();
      A.loadLibrary();
    }).catch(function (error) {
      A.say("upload-msg", "上传失败：" + error.message, false);
    }).then(function () { $("upload-btn").disabled = false; });
  }

  // -- test box ------------------------------------------------------------------------------

  function ask(event) {
    event.preventDefault();
    var question = $("ask-q").value.trim();
    if (!question) return;
    A.say("ask-msg", "");
    $("ask-btn").disabled = true;
    A.api("POST", A.API + "/ask", {question: question}).then(showAnswer).catch(function (error) {
      A.say("ask-msg", "提问失败：" + error.message, false);
    }).then(function () { $("ask-btn").disabled = false; });
  }

  function showAnswer(data) {
    var question = $("ask-q").value.trim();
    $("ask-result").hidden = false;
    $("ask-answer").textContent = data.answer;
    $("ask-answer").className = "answer" + (data.abstained ? " abstained" : "");
    $("ask-meta").textContent = (data.abstained ? "未找到答案（以下为最接近的条目）" : "已回答") +
      " · 置信度 " + data.confidence.toFixed(2);
    var body = $("ask-hits");
    A.clear(body);
    data.hits.forEach(function (hit) {
      var row = el("tr", null, "hit");
      cell(row, "出处", "《" + hit.document + "》" + hit.section + " › " + hit.item + ". " + hit.item_title,
           "cite lead");
      cell(row, "分数", hit.score.toFixed(3), "num");
      cell(row, "原文", hit.sentences.join(""), "wide");
      var curation = window.PolicybotCuration;
      if (curation) {  // the curation section: keep (question, item) as a confirmed answer
        var pick = el("button", "就是这条", "confirm-hit");
        pick.type = "button";
        pick.addEventListener("click", function () { curation.confirmItem(question, hit); });
        cell(row, "确认", "").appendChild(pick);
      }
      body.appendChild(row);
    });
  }

  // -- statistics ----------------------------------------------------------------------------

  var loadStats = A.loadStats = function () {
    A.api("GET", A.API + "/stats").then(function (data) {
      var rate = data.answer_rate === null ? "—" : Math.round(data.answer_rate * 100) + "%";
      $("stats-summary").textContent = "用户提问 " + data.questions + " 次，其中检索 " + data.searches +
        " 次，回答率 " + rate + "（不含上方的测试提问）。";
      drawChart(data.days);
      fill("stats-unanswered", data.unanswered, function (u) { return u.question + "（" + u.count + " 次）"; },
           "没有未回答的问题。");
      fill("stats-items", data.top_items, function (i) {
        var name = i.title ? "《" + i.title + "》" : i.document;
        var item = i.item_title ? " " + i.item_number + ". " + i.item_title : " " + (i.item || "");
        return name + item + "（" + i.count + " 次）";
      }, "暂无。");
    }).catch(function (error) { $("stats-summary").textContent = "统计不可用：" + error.message; });
  };

  /* One bar a day (its unanswered part on top), the busiest day's count on the y axis, and the
   * date under the first day, every seventh day and the last day. */
  function drawChart(days) {
    var bars = $("stats-bars"), axis = $("stats-axis");
    A.clear(bars);
    A.clear(axis);
    var most = Math.max.apply(null, days.map(function (d) { return d.questions; }).concat([1]));
    $("stats-max").textContent = most;
    days.forEach(function (d, n) {
      var bar = el("div");
      bar.title = d.date + "：提问 " + d.questions + " 次，未回答 " + d.unanswered + " 次";
      var missed = el("span", null, "missed"), asked = el("span", null, "asked");
      missed.style.height = (100 * d.unanswered / most) + "%";
      asked.style.height = (100 * (d.questions - d.unanswered) / most) + "%";
      bar.appendChild(missed);
      bar.appendChild(asked);
      bars.appendChild(bar);
      var last = n === days.length - 1;
      if (last || (n % 7 === 0 && days.length - 1 - n >= 4)) {  // no weekly label crowding the last one
        var label = el("span", A.day(d.date), n === 0 ? "first" : last ? "last" : "");
        label.style.left = (n === 0 ? 0 : last ? 100 : 100 * (n + 0.5) / days.length) + "%";
        axis.appendChild(label);
      }
    });
  }

  function fill(id, rows, text, empty) {
    var list = $(id);
    A.clear(list);
    rows.forEach(function (row) { list.appendChild(el("li", text(row))); });
    if (!rows.length) list.appendChild(el("li", empty, "muted"));
  }

  $("login-form").addEventListener("submit", login);
  $("logout").addEventListener("click", function () { A.logout(""); });
  $("file").addEventListener("change", preview);
  $("preview-cancel").addEventListener("click", resetUpload);
  $("upload-form").addEventListener("submit", upload);
  $("reindex-btn").addEventListener("click", A.reindex);
  $("rollback-btn").addEventListener("click", A.rollback);
  $("ask-form").addEventListener("submit", ask);
  start();
}());
