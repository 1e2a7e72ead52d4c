// Student page: join, pick an exercise, answer, see the grade. No external assets.
(function () {
  "use strict";
  var $ = function (id) { return document.getElementById(id); };
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
        if (!resp.ok) { throw new Error((data.error && data.error.message) || resp.statusText); }
        return data;
      });
    });
  }

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
    $("exercise-meta").textContent = ex.subject + " · grades " + ex.grade_band;
    $("answer").value = "";
    $("result").hidden = true;
    $("error").hidden = true;
    show("exercise");
    $("answer").focus();
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

  $("answer-form").addEventListener("submit", function (event) {
    event.preventDefault();
    $("submit").disabled = true;
    $("error").hidden = true;
    var answer = $("answer").value;
    // Re-trying the same answer reuses its key, so the box counts it once.
    if (!state.pending || state.pending.exercise !== state.exercise.id || state.pending.answer !== answer) {
      state.pending = { exercise: state.exercise.id, answer: answer, key: newKey() };
    }
    api("POST", "/answers", {
      exercise_id: state.exercise.id, answer: answer, class_id: state.classId,
      nickname: state.nickname, idempotency_key: state.pending.key
    }).then(function (data) {
      state.pending = null;
      var grade = data.grade;
      $("verdict").textContent = grade.correct ? "Correct!" : "Not quite yet.";
      $("verdict").className = grade.correct ? "correct" : "incorrect";
      $("confidence").textContent = "Confidence: " + Math.round(grade.confidence * 100) + "%";
      $("result").hidden = false;
    }).catch(function (err) {
      $("error").textContent = "Could not check your answer: " + err.message;
      $("error").hidden = false;
    }).finally(function () { $("submit").disabled = false; });
  });

  if (state.classId && state.nickname) { loadExercises(); } else { show("join"); }
})();
