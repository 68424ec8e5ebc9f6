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
