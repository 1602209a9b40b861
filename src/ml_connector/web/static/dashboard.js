// The failed queue's select-all box: ticks or clears every record box of the page (they belong to the "bulk"
// form, whose Replay selected button posts them). Without JavaScript each box still works on its own.
document.addEventListener("DOMContentLoaded", () => {
  const all = document.getElementById("select-all");
  if (!all) {
    return;
  }
  const boxes = () => Array.from(document.querySelectorAll("input.select-one"));
  const sync = () => {
    const ticked = boxes().filter((box) => box.checked).length;
    all.checked = ticked > 0 && ticked === boxes().length;
    all.indeterminate = ticked > 0 && ticked < boxes().length;
  };
  all.addEventListener("change", () => {
    boxes().forEach((box) => {
      box.checked = all.checked;
    });
    sync();
  });
  boxes().forEach((box) => box.addEventListener("change", sync));
});
