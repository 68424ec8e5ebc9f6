// Progressive enhancement only: every page works without it.
// A "select this page" checkbox ticks or clears the row checkboxes of its bulk form.
document.addEventListener("change", (event) => {
  const all = event.target.closest("[data-select-page]");
  if (!all) return;
  const form = all.getAttribute("form");
  document.querySelectorAll(`input[name="contact_id"][form="${form}"]`).forEach((box) => {
    box.checked = all.checked;
  });
});

// Tell the server the browser's time zone, so pages show times in it (unless the user
// chose another on the time zone page). The first page after a change shows the old zone.
(() => {
  const zone = Intl.DateTimeFormat().resolvedOptions().timeZone;
  if (!zone) return;
  const cookie = `gatherly_tz=${zone}`; // IANA names are cookie-safe: A-Z a-z 0-9 / _ + -
  if (!document.cookie.split("; ").includes(cookie)) {
    document.cookie = `${cookie}; path=/; max-age=31536000; samesite=lax`;
  }
})();

// A select marked data-shows hides the parts of its form meant for its other choices:
// each part names them as data-when="<select name>:<value> …". Without this script every
// part shows, and the server reads only the part the choice needs.
(() => {
  const show = (select) => {
    const scope = select.form || document;
    scope.querySelectorAll("[data-when]").forEach((part) => {
      const wants = part.dataset.when.split(" ").filter((w) => w.startsWith(`${select.name}:`));
      if (wants.length) part.hidden = !wants.includes(`${select.name}:${select.value}`);
    });
  };
  document.addEventListener("change", (event) => {
    if (event.target.matches("select[data-shows]")) show(event.target);
  });
  document.querySelectorAll("select[data-shows]").forEach(show);
})();

// A button marked data-confirm asks before its form is sent (an action that cannot be
// undone). Without this script the form is sent at once.
document.addEventListener("click", (event) => {
  const button = event.target.closest("button[data-confirm]");
  if (button && !window.confirm(button.dataset.confirm)) event.preventDefault();
});

// A preview frame marked data-fit takes the height of what it shows (it is sandboxed and
// runs no script; allow-same-origin lets this page measure it). Without this script it
// keeps its height from the stylesheet and scrolls.
(() => {
  const fit = (frame) => {
    const doc = frame.contentDocument;
    if (doc && doc.documentElement) frame.style.height = `${doc.documentElement.scrollHeight + 4}px`;
  };
  document.addEventListener(
    "load",
    (event) => {
      if (event.target instanceof HTMLIFrameElement && event.target.hasAttribute("data-fit")) {
        fit(event.target);
      }
    },
    true,
  );
  document.querySelectorAll("iframe[data-fit]").forEach((frame) => {
    if (frame.contentDocument && frame.contentDocument.readyState === "complete") fit(frame);
  });
})();

// A button marked data-copy-field copies the text of that field (an embed snippet); it is
// hidden until this script shows it, and without it the field's text can be selected.
(() => {
  document.querySelectorAll("button[data-copy-field][hidden]").forEach((button) => {
    button.hidden = false;
  });
  document.addEventListener("click", (event) => {
    const button = event.target.closest("button[data-copy-field]");
    if (!button) return;
    const field = document.getElementById(button.dataset.copyField);
    if (!field) return;
    field.select();
    const said = (text) => {
      button.textContent = text;
    };
    if (navigator.clipboard && window.isSecureContext) {
      navigator.clipboard.writeText(field.value).then(
        () => said("Copied"),
        () => said("Selected: press Ctrl+C to copy"),
      );
    } else {
      said("Selected: press Ctrl+C to copy");
    }
  });
})();
