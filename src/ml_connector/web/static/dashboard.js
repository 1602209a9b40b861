// The failed queue's select-all boxes: each ticks or clears every record box of its own table (the boxes belong to
// the "bulk" form, whose Replay selected button posts them). Without JavaScript each box still works on its own.
document.addEventListener("DOMContentLoaded", () => {
  document.querySelectorAll("input.select-all").forEach((all) => {
    const table = all.closest("table");
    const boxes = () => Array.from(table.querySelectorAll("input.select-one"));
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
});
