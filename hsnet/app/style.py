"""How the page looks: its style sheet, theme colours (WCAG AA text) and a script naming what Gradio leaves unnamed."""
import gradio as gr

CSS = """
.hs-banner {padding: 0.6rem 0.9rem; border-radius: 8px; font-size: 1rem}
.hs-banner progress {display: block; width: 100%; margin-top: 0.4rem}
.hs-ok {background: #e8f5e9; color: #1b5e20}
.hs-wait {background: #fff8e1; color: #5c4000}
.hs-missing {background: #fdecea; color: #7a1a12; border: 1px solid #f5c2bd}
.hs-note {color: #1f2937; font-size: 0.95rem}
.hs-grid {display: grid; grid-template-columns: repeat(auto-fill, minmax(130px, 1fr)); gap: 8px}
.hs-probe-head {display: flex; flex-wrap: wrap; gap: 12px; align-items: flex-end}
/* Labels above the pictures rather than floating over them. */
#result label.float, #probability label.float, #vote-map label.float, .hs-gallery label.float
  {position: static !important; margin: var(--block-label-margin)}
.hs-gallery .grid-container {padding-top: 0 !important}
/* A clicked map opens large: the gallery grows while it previews one picture. */
.hs-gallery:has(.preview) .gallery-container {min-height: min(75vh, 640px)}
.hs-fig {margin: 0; min-width: 0}
.hs-fig img {display: block; width: 100%; height: auto}
.hs-scale img {width: auto; max-width: 100%}
.hs-fig figcaption {color: #1f2937; font-size: 0.9rem; padding-top: 2px; overflow-wrap: anywhere}
.hs-support h3 {margin: 1rem 0 0.3rem} .hs-support h4 {margin: 0.6rem 0 0.3rem; color: #1f2937}
/* Gallery captions below their thumbnails, not over them; every thumbnail shown, none clipped. */
.hs-gallery .caption-label {position: static !important; transform: none !important; max-width: 100% !important;
  background: transparent !important; color: #1f2937 !important; white-space: normal !important;
  overflow: visible !important; text-overflow: clip !important; padding: 2px 0 !important; font-size: 0.9rem !important}
.hs-gallery .thumbnail-item {height: auto !important; aspect-ratio: auto !important; overflow: visible !important}
.hs-gallery .thumbnail-item img {height: auto !important}
.hs-gallery .fixed-height {min-height: 0 !important; max-height: none !important}
.hs-gallery .grid-container {grid-template-columns: repeat(auto-fill, minmax(150px, 1fr)) !important;
  grid-auto-rows: auto !important; height: auto !important}
.hs-gallery .grid-wrap {height: auto !important; max-height: none !important; overflow: visible !important}
#mask-png .file-name, #mask-png td {white-space: normal !important; overflow-wrap: anywhere; text-overflow: clip}
.hs-error {padding: 0.6rem 0.9rem; border-radius: 8px; background: #fdecea; color: #7a1a12; border: 1px solid #f5c2bd}
/* A hovered or focused thumbnail keeps its caption readable (Gradio dims it). */
.hs-gallery .thumbnail-item:hover, .hs-gallery .thumbnail-item:focus {opacity: 1 !important}
.hs-gallery .thumbnail-item:hover .caption-label, .hs-gallery .thumbnail-item:focus .caption-label
  {color: #1f2937 !important; background: transparent !important; opacity: 1 !important}
/* Probe maps open large over the page and close on a second click, tap or Enter. */
.hs-enlarge > summary {list-style: none; cursor: zoom-in}
.hs-enlarge > summary::-webkit-details-marker {display: none}
.hs-enlarge[open] > summary img {position: fixed; inset: 0; margin: auto; z-index: 1000; width: min(92vw, 80vh);
  height: auto; max-height: 92vh; object-fit: contain; background: #fff; cursor: zoom-out;
  box-shadow: 0 0 0 100vmax rgba(0, 0, 0, 0.6)}
/* A layer map's larger view stays on screen with its close button, on a phone and for wide maps. */
.hs-gallery .preview {max-height: 85vh !important}
.hs-gallery:has(.preview) .grid-wrap {display: none !important}
.hs-gallery .preview img {max-height: 60vh !important; object-fit: contain !important}
.hs-gallery .preview .icon-buttons, .hs-gallery .preview button[aria-label] {z-index: 20}
#weights-menu {min-width: min(100%, 340px)}
/* Editor labels above the canvas, never under its toolbar. */
[id^=support-editor-] label.float {position: static !important; margin: var(--block-label-margin)}
@media (max-width: 520px) {
  .hs-gallery .grid-container {grid-template-columns: repeat(2, minmax(0, 1fr)) !important}
  .hs-grid {grid-template-columns: repeat(2, minmax(0, 1fr))}
}
"""

THEME = gr.themes.Soft().set(
    # Text on the page's light background at WCAG AA (4.5:1) or better: labels, help text, small print.
    body_text_color_subdued="#374151",
    block_label_text_color="#1f2937",
    block_info_text_color="#374151",
    block_title_text_color="#1f2937",
    checkbox_label_text_color="#1f2937",
    # White text on the primary colour, and the primary colour as text (selected tabs), at 4.5:1 or better.
    color_accent="*primary_700",
    button_primary_background_fill="*primary_600",
    button_primary_background_fill_hover="*primary_700",
    checkbox_label_background_fill_selected="*primary_600",
)

HEAD = """
<script>
(() => {
  const name = () => {
    document.querySelectorAll('canvas:not([aria-label])').forEach((c) => {
      const tab = c.closest('[id^=support-editor-]');
      c.setAttribute('role', 'img');
      c.setAttribute('aria-label', tab ? `Support ${tab.id.slice(-1)}: drawing area, paint over the object`
                                       : 'drawing area');
    });
    // Image buttons (the result and probability pictures) are named after their picture.
    document.querySelectorAll('button:not([aria-label])').forEach((b) => {
      const img = b.querySelector('img[alt]');
      const block = b.closest('[id]');
      const label = block && block.querySelector('[data-testid=block-label]');
      if (img && !b.textContent.trim()) b.setAttribute('aria-label', (label && label.textContent.trim()) || img.alt);
    });
    document.querySelectorAll('img:not([alt]), img[alt=""]').forEach((img) => {
      const block = img.closest('[id]');
      const label = block && block.querySelector('[data-testid=block-label], label span');
      img.setAttribute('alt', (label && label.textContent.trim()) || 'picture');
    });
  };
  new MutationObserver(name).observe(document.documentElement, {childList: true, subtree: true});
  // A support editor reads its picture in the browser and shows nothing for a file that is not one, picked or
  // dropped: say so, just above the editor (inside it, its canvas would cover the note).
  const checkSupportFiles = async (target, files) => {
    const block = target instanceof Element && target.closest('[id^=support-editor-]');
    if (!block || !files || !files.length) return;
    document.querySelectorAll(`.hs-upload-error[data-editor="${block.id}"]`).forEach((old) => old.remove());
    for (const file of files) {
      try { (await createImageBitmap(file)).close(); } catch (error) {
        const note = document.createElement('div');
        note.className = 'hs-error hs-upload-error';
        note.dataset.editor = block.id;
        note.setAttribute('role', 'alert');
        note.textContent = `Support ${block.id.slice(-1)}: ${file.name} is not an image that can be read; ` +
          'upload a PNG or JPEG.';
        block.before(note);
      }
    }
  };
  document.addEventListener('change', (event) => {
    const input = event.target;
    if (input instanceof HTMLInputElement && input.type === 'file') checkSupportFiles(input, input.files);
  }, true);
  document.addEventListener('drop', (event) => {
    checkSupportFiles(event.target, event.dataTransfer && [...event.dataTransfer.files]);
  }, true);
  // A map's larger view opens in place: bring the whole gallery, close button included, into view.
  document.addEventListener('click', (event) => {
    const item = event.target.closest && event.target.closest('.hs-gallery .thumbnail-item');
    const gallery = item && item.closest('.hs-gallery');
    if (gallery) setTimeout(() => gallery.scrollIntoView({behavior: 'instant', block: 'start'}), 120);
  }, true);
  // Gradio's dropdown drops keyboard focus on the page body when left with Tab: move it on to the next control.
  document.addEventListener('keydown', (event) => {
    const menu = event.target.closest && event.target.closest('.hs-keep-focus');
    if (event.key !== 'Tab' || !menu) return;
    const focusable = [...document.querySelectorAll('input, button, select, textarea, a[href], [tabindex]')]
      .filter((e) => e.tabIndex >= 0 && !e.disabled && e.getClientRects().length && !menu.contains(e));
    const after = focusable.filter((e) => menu.compareDocumentPosition(e) &
      (event.shiftKey ? Node.DOCUMENT_POSITION_PRECEDING : Node.DOCUMENT_POSITION_FOLLOWING));
    const next = event.shiftKey ? after[after.length - 1] : after[0];
    if (!next) return;
    event.preventDefault();
    event.target.dispatchEvent(new KeyboardEvent('keydown', {key: 'Escape', bubbles: true}));
    event.target.blur();
    setTimeout(() => next.focus(), 60);
  }, true);
})();
</script>
"""
