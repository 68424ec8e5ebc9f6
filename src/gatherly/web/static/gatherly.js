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
