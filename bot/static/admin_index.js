/* The admin page's index part: re-index jobs with a progress bar that moves smoothly, and
 * the kept versions, each labelled with its time and what it changed.
 *
 * The bar: the server's progress (polled every POLL_MS) is the truth; between polls the
 * bar goes on at the speed measured over the last polls, but never past the end of the
 * stage the job is in, and it never goes backwards. */
(function () {
  "use strict";

  var A = window.PolicybotAdmin;
  var $ = A.$;
  var POLL_MS = 500;
  var STAGES = {queued: "排队中", parse: "解析文件", embed: "计算向量", bm25: "建立关键词索引",
                publish: "发布", done: "完成"};
  var polling = null;
  var versions = {};  // id -> {label, created}: what the page shows instead of the id
  var bar = {shown: 0, truth: 0, ceiling: 0, rate: 0, at: 0, frame: null};

  A.onLogout.push(function () { if (polling) clearTimeout(polling); });

  /* "12月2日 08:24 · 新增《…》，共 2 份文件" for a version id (the id itself until the list is loaded). */
  A.versionText = function (id) {
    var v = versions[id];
    return v ? A.when(v.created) + " · " + v.label : (id || "（尚无索引）");
  };

  // -- the progress bar ----------------------------------------------------------------------

  function resetBar() {
    if (bar.frame) cancelAnimationFrame(bar.frame);
    bar = {shown: 0, truth: 0, ceiling: 0, rate: 0, at: 0, frame: null};
    drawBar();
  }

  /* A poll's answer: move the truth forward, and measure the speed to interpolate with. */
  function observe(job) {
    var now = performance.now();
    if (job.progress > bar.truth && bar.at) bar.rate = (job.progress - bar.truth) / (now - bar.at);
    else if (job.progress <= bar.truth) bar.rate *= 0.5;  // a stall: slow down instead of running ahead
    bar.truth = Math.max(bar.truth, job.progress);
    bar.ceiling = job.state === "done" ? 1 : Math.max(bar.truth, Math.min(job.stage_end || 0, 0.995));
    bar.at = now;
    if (!bar.frame) bar.frame = requestAnimationFrame(animate);
  }

  function animate(now) {
    var guess = Math.min(bar.truth + bar.rate * (now - bar.at), bar.ceiling);
    var goal = Math.max(bar.truth, guess);
    // Ease towards the goal; never backwards.
    bar.shown = Math.max(bar.shown, bar.shown + (goal - bar.shown) * 0.25);
    if (goal - bar.shown < 0.0005) bar.shown = Math.max(bar.shown, goal);
    drawBar();
    // Rest once the bar has caught up with where it may go; the next poll wakes it.
    bar.frame = bar.shown < bar.ceiling - 0.0005 ? requestAnimationFrame(animate) : null;
  }

  function drawBar() {
    var percent = Math.floor(bar.shown * 1000) / 10;
    var node = $("job-progress");
    node.firstChild.style.width = percent + "%";
    node.setAttribute("aria-valuenow", String(Math.floor(percent)));
    var text = $("job-status").getAttribute("data-stage") || "";
    $("job-status").textContent = text + (text ? " " : "") + Math.floor(percent) + "%";
  }

  function showJob(job) {
    var stage = STAGES[job.stage] || job.stage;
    var count = job.total > 1 ? "（" + job.done + "/" + job.total + "）" : "";
    var state = {queued: "排队中", running: stage + count, done: "已完成", failed: "失败"}[job.state] || "";
    $("job-status").setAttribute("data-stage", state);
    observe(job);
    drawBar();
  }

  // -- jobs ----------------------------------------------------------------------------------

  A.reindex = function () {
    $("reindex-btn").disabled = true;
    A.say("index-msg", "");
    A.api("POST", A.API + "/reindex").then(function (data) {
      watch(data.job, true);
    }).catch(function (error) {
      if (error.data && error.data.job) return watch(error.data.job, true);
      $("reindex-btn").disabled = false;
      A.say("index-msg", "无法开始重建：" + error.message, false);
    });
  };

  A.resumeJob = function () {
    A.api("GET", A.API + "/jobs").then(function (data) {
      var last = data.jobs[0];
      if (last && (last.state === "queued" || last.state === "running")) watch(last.job, true);
    }).catch(function () { /* the job list only resumes watching; the page works without it */ });
  };

  function watch(jobId, fresh) {
    if (fresh) resetBar();
    $("reindex-btn").disabled = true;
    $("job-progress").hidden = false;
    A.api("GET", A.API + "/jobs/" + encodeURIComponent(jobId)).then(function (job) {
      showJob(job);
      if (job.state === "queued" || job.state === "running") {
        polling = setTimeout(function () { watch(jobId, false); }, POLL_MS);
        return;
      }
      $("reindex-btn").disabled = false;
      if (job.state === "done") {
        A.loadLibrary();
        A.loadVersions().then(function () {
          A.say("index-msg", "重建完成，已发布新版本：" + A.versionText(job.version) + "。", true);
        });
      } else {
        A.say("index-msg", "重建失败：" + job.error, false);
      }
    }).catch(function (error) {
      $("reindex-btn").disabled = false;
      A.say("index-msg", "无法读取任务状态：" + error.message, false);
    });
  }

  // -- versions ------------------------------------------------------------------------------

  A.loadVersions = function () {
    return A.api("GET", A.API + "/versions").then(function (data) {
      versions = {};
      data.versions.forEach(function (v) { versions[v.version] = {label: v.label, created: v.created}; });
      var select = $("versions");
      A.clear(select);
      data.versions.forEach(function (v) {
        var mark = v.version === data.served ? "（正在使用）" : "";
        var option = A.el("option", (v.intact ? A.versionText(v.version) : v.version + " · 已损坏") + mark);
        option.value = v.version;
        option.title = v.version;
        option.disabled = !v.intact;
        select.appendChild(option);
      });
      $("version").textContent = data.served ? A.versionText(data.served) : "（尚无可用索引）";
      $("version").title = data.served || "";
      showHealth(data);
    }).catch(function (error) { A.say("index-msg", error.message, false); });
  };

  function showHealth(data) {
    var health = $("index-health");
    health.hidden = !data.damaged.length;
    health.textContent = data.damaged.map(function (d) {
      return "索引版本 " + d.version + " 已损坏（" + d.problem + "）。";
    }).join("") + (data.damaged.length ? (data.served ? "机器人正在使用完好的版本：" + A.versionText(data.served) +
      "；请重建索引或回滚到完好的版本。" : "没有完好的版本：请重建索引。") : "");
  }

  A.rollback = function () {
    var version = $("versions").value;
    if (!version) return;
    A.api("POST", A.API + "/rollback", {version: version}).then(function (data) {
      A.say("index-msg", "已回滚到 " + A.versionText(data.version) + "。", true);
      A.loadLibrary();
      A.loadVersions();
    }).catch(function (error) { A.say("index-msg", "回滚失败：" + error.message, false); });
  };
}());
