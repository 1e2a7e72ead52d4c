// Student page: join, pick an exercise, answer, see the grade and why.
// Flaky Wi-Fi: an answer that cannot reach the box is kept in localStorage with its
// idempotency key and re-sent until the box confirms it; the box counts it once.
(function () {
  "use strict";
  var $ = function (id) { return document.getElementById(id); };
  var T = JSON.parse($("strings").textContent);
  var QUEUE = "chalkbox.queue";
  var state = { classId: localStorage.getItem("chalkbox.class") || "",
                nickname: localStorage.getItem("chalkbox.nickname") || "", exercise: null };

  // crypto.randomUUID needs a secure context; the box is plain http on the school Wi-Fi.
  function newKey() {
    var bytes = new Uint8Array(16);
    crypto.getRandomValues(bytes);
    return Array.prototype.map.call(bytes, function (b) { return ("0" + b.toString(16)).slice(-2); }).join("");
  }

  function show(section) {
    ["join", "exercises", "exercise"].forEach(function (id) { $(id).hidden = id !== section; });
  }

  function api(method, path, body) {
    return fetch("/api/v1" + path, {
      method: method, headers: body ? { "Content-Type": "application/json" } : {},
      body: body ? JSON.stringify(body) : undefined
    }).then(function (resp) {
      return resp.json().then(function (data) {
        if (!resp.ok) {
          var err = new Error((data.error && data.error.message) || resp.statusText);
          err.status = resp.status; err.data = data;
          throw err;
        }
        return data;
      });
    });
  }

  // --- the offline queue ---------------------------------------------------------
  function queued() { try { return JSON.parse(localStorage.getItem(QUEUE) || "[]"); } catch (e) { return []; } }
  function saveQueue(items) {
    localStorage.setItem(QUEUE, JSON.stringify(items));
    var status = $("queue-status");
    status.hidden = items.length === 0;
    status.textContent = T.queued_count + ": " + items.length;
  }
  function enqueue(payload) {
    var items = queued().filter(function (p) { return p.idempotency_key !== payload.idempotency_key; });
    items.push(payload);
    saveQueue(items);
  }
  var flushing = false;
  function flush() {
    var items = queued();
    if (flushing || items.length === 0) { return; }
    flushing = true;
    var payload = items[0];
    api("POST", "/answers", payload).then(function () {
      saveQueue(queued().slice(1));
      flushing = false;
      flush();
    }).catch(function (err) {
      flushing = false;
      if (err.status && err.status >= 400 && err.status < 500) { saveQueue(queued().slice(1)); }
    });
  }
  setInterval(flush, 5000);
  window.addEventListener("online", flush);

  // --- pages -----------------------------------------------------------------------
  function loadExercises() {
    $("who").textContent = state.nickname + " · " + state.classId;
    show("exercises");
    api("GET", "/exercises").then(function (data) {
      var list = $("exercise-list");
      list.innerHTML = "";
      data.exercises.forEach(function (ex) {
        var item = document.createElement("li");
        var button = document.createElement("button");
        button.type = "button";
        button.textContent = ex.question;
        button.setAttribute("data-id", ex.id);
        button.addEventListener("click", function () { openExercise(ex); });
        item.appendChild(button);
        list.appendChild(item);
      });
    });
  }

  function openExercise(ex) {
    state.exercise = ex;
    $("question").textContent = ex.question;
    $("exercise-meta").textContent = ex.subject + " · " + T.grades + " " + ex.grade_band;
    $("answer").value = "";
    ["result", "error", "hint", "suggestion", "words", "thanks"].forEach(function (id) { $(id).hidden = true; });
    state.lastRecord = null;
    show("exercise");
    $("answer").focus();
  }

  function showGrade(grade) {
    $("verdict").textContent = grade.correct ? T.correct : T.incorrect;
    $("verdict").className = grade.correct ? "correct" : "incorrect";
    $("confidence").textContent = T.confidence + ": " + Math.round(grade.confidence * 100) + "%";
    $("result").hidden = false;
  }

  function showExplanation(exerciseId, answer) {
    api("POST", "/explain", { exercise_id: exerciseId, answer: answer }).then(function (why) {
      if (!state.exercise || state.exercise.id !== exerciseId) { return; }
      $("hint").textContent = T.hint + ": " + why.hint;
      $("hint").hidden = false;
      if (why.suggestion) { $("suggestion").textContent = why.suggestion; $("suggestion").hidden = false; }
      var top = why.words.slice().sort(function (a, b) { return Math.abs(b.weight) - Math.abs(a.weight); })[0];
      if (top) { $("words").textContent = T.why + ": “" + top.text + "”"; $("words").hidden = false; }
    }).catch(function () { /* an explanation is a bonus: never an error for the student */ });
  }

  $("join-form").addEventListener("submit", function (event) {
    event.preventDefault();
    state.classId = $("class-code").value.trim();
    state.nickname = $("nickname").value.trim();
    localStorage.setItem("chalkbox.class", state.classId);
    localStorage.setItem("chalkbox.nickname", state.nickname);
    loadExercises();
  });

  $("back").addEventListener("click", function () { show("exercises"); });

  Array.prototype.forEach.call(document.querySelectorAll(".thumb"), function (button) {
    button.addEventListener("click", function () {
      if (!state.lastRecord) { return; }
      api("POST", "/feedback", { record_id: state.lastRecord, feedback: button.getAttribute("data-feedback"),
                                 class_id: state.classId, nickname: state.nickname }).then(function () {
        $("thanks").hidden = false;
      }).catch(function () { /* a lost thumb is not worth an error message */ });
    });
  });

  $("ask-form").addEventListener("submit", function (event) {
    event.preventDefault();
    var box = $("ask-result");
    $("ask-submit").disabled = true;
    api("POST", "/ask", { question: $("ask-question").value, class_id: state.classId,
                          nickname: state.nickname, idempotency_key: newKey() }).then(function (data) {
      box.textContent = data.forwarded ? T.forwarded : T.answer_from + ": " + data.answer;
    }).catch(function (err) {
      box.textContent = T.error + ": " + err.message;
    }).finally(function () { box.hidden = false; $("ask-submit").disabled = false; });
  });

  $("answer-form").addEventListener("submit", function (event) {
    event.preventDefault();
    $("submit").disabled = true;
    $("error").hidden = true;
    var answer = $("answer").value;
    // Re-trying the same answer reuses its key, so the box counts it once.
    if (!state.pending || state.pending.exercise !== state.exercise.id || state.pending.answer !== answer) {
      state.pending = { exercise: state.exercise.id, answer: answer, key: newKey() };
    }
    var payload = { exercise_id: state.exercise.id, answer: answer, class_id: state.classId,
                    nickname: state.nickname, idempotency_key: state.pending.key };
    api("POST", "/answers", payload).then(function (data) {
      state.pending = null;
      state.lastRecord = data.record_id;
      showGrade(data.grade);
      showExplanation(payload.exercise_id, answer);
    }).catch(function (err) {
      if (err.status === 503 && err.data && err.data.grade) {  // graded, not saved: keep it
        enqueue(payload);
        showGrade(err.data.grade);
        $("error").textContent = T.not_saved;
      } else if (!err.status) {                                 // no connection at all
        enqueue(payload);
        $("error").textContent = T.queued;
      } else {
        $("error").textContent = T.error + ": " + err.message;
      }
      $("error").hidden = false;
    }).finally(function () { $("submit").disabled = false; });
  });

  saveQueue(queued());
  flush();
  if (state.classId && state.nickname) { loadExercises(); } else { show("join"); }
})();
