"""HSNet exploration app: segment a query from a few annotated supports and see why.

Run ``python app.py`` (or ``make app``) and open the printed address; the same file
is the app of a Hugging Face Space. Weights come from ``--weights`` or the
``HSNET_WEIGHTS`` environment variable (a registry name, a Hub repo id, or a local
file or folder), else the registry default. This file holds the page's layout and
its wiring; the views, callbacks and model steps are ``hsnet.app``'s.
"""
from __future__ import annotations

import argparse
import logging
import os
import signal
import sys
from collections.abc import Sequence
from pathlib import Path

import gradio as gr
from PIL import Image

from hsnet import hub
from hsnet.app.callbacks import (FORM, Page, make_banner, make_explore, make_label, make_redraw, make_segment_api,
                                 make_segment_page, make_upload_check)
from hsnet.app.examples import Episode, example_rows, read_episodes
from hsnet.app.forms import MAX_SUPPORTS
from hsnet.app.panels import OUTPUTS, PANELS, SEGMENT_API, describe_input
from hsnet.app.probe_view import ALONE, OVER_PHOTO
from hsnet.app.steps import PROBES, STORE, WEIGHTS_ENV, on_gpu, run_model  # noqa: F401 - module-level for ZeroGPU
from hsnet.app.style import CSS, HEAD, THEME
from hsnet.app.weights_menu import WeightsMenu
from hsnet.app.banner import banner_html
from hsnet.inputs import MAX_PIXELS
from hsnet.serving import DELETE_CACHE, MAX_LABEL_BYTES, MAX_LABEL_QUERIES, MAX_UPLOAD_BYTES, MaskFiles, private_temp_dir
from hsnet.serving.guards import guard_editor, guard_image, launch_kwargs
from hsnet.serving.queues import EXPLORE_QUEUE, LABEL_QUEUE, QUEUE, SEGMENT_QUEUE

# Gradio decodes some uploads itself before hsnet reads them; Pillow refuses more than twice its
# MAX_IMAGE_PIXELS, so this makes that decoding stop at hsnet's own pixel limit too.
Image.MAX_IMAGE_PIXELS = MAX_PIXELS // 2

ROOT = Path(__file__).resolve().parent
EXAMPLES_DIR = ROOT / "examples"
PAPER = "https://arxiv.org/abs/2104.01538"

INTRO = f"""
# HSNet: find an object from a few examples

Show the model **one to five photos of an object, each with the object painted**, and it finds that kind of
object in a new photo, with no training. Then look inside: how each backbone layer matched the supports.

1. Pick an example just below, or upload a **query** photo and a photo in **Support 1** (PNG or JPEG, up to
   {MAX_UPLOAD_BYTES // 2**20} MB each).
2. Paint over the object in each support with the brush (or upload a mask). More supports: tabs 2 to 5.
3. Press **Segment**, then **click a point on the result** (or type its x and y in the Probe tab) to see where
   it matches the supports.

<small>HSNet: Juhong Min, Dahyun Kang and Minsu Cho, *Hypercorrelation Squeeze for Few-Shot Segmentation*,
ICCV 2021 ([paper]({PAPER})). This is an independent reimplementation; the weights are the authors'.</small>
"""

LABEL_HELP = f"""
**Label many photos with the same supports.** Paint the object on one to five supports above, then upload the
photos to label (up to {MAX_LABEL_QUERIES} images, or one zip of them; {MAX_UPLOAD_BYTES // 2**20} MB per file and
{MAX_LABEL_BYTES // 2**20} MB in all per request). The gallery fills in as each photo is done; at the end, download
a zip of the dataset `hsnet label` writes: `images/`, `annotations/instances_default.json` (COCO, one category) and
`masks/<name>.png` (0/255, each photo's own size). Files that cannot be read are skipped and listed.
"""

API_PARAMETERS = {
    "query": "the photo to segment",
    "weights": "a Checkpoint name from the page's menu; leave it out for the server's own weights",
    "rule": "how several supports combine: vote (the authors' rule) or mean-prob",
    **{f"support_{i}": f"support {i}: an image editor value (background image; brush layers mark the object)"
       for i in range(1, MAX_SUPPORTS + 1)},
    **{f"mask_{i}": f"support {i}'s mask as an image (white or opaque = object); wins over brush layers"
       for i in range(1, MAX_SUPPORTS + 1)},
    "mode": "how heatmaps are drawn: 'over the photo' or 'alone'",
}

SCROLL_TO = ("(id) => setTimeout(() => document.getElementById(id)?.scrollIntoView({behavior: 'instant', "
             "block: 'start'}), 150)")  # after Gradio has drawn the new outputs


def support_tab(i: int) -> tuple[gr.ImageEditor, gr.Image]:
    """Tab ``i`` of the supports: the editor to paint in, and a mask upload that opens when a mask arrives."""
    with gr.Tab(f"Support {i}" if i == 1 else str(i), id=f"support-{i}"):
        editor = guard_editor(gr.ImageEditor(
            label=f"Support {i}: paint over the object" + (" (optional)" if i > 1 else ""), type="pil", format="png",
            sources=["upload", "clipboard"], transforms=(), layers=False, height=360, elem_id=f"support-editor-{i}",
            brush=gr.Brush(colors=[("#ff4040", 0.7)], color_mode="fixed")), f"support {i}")
        with gr.Accordion("...or upload its mask (an uploaded mask wins over painting)", open=False) as accordion:
            upload = guard_image(gr.Image(label=f"Support {i} mask", type="filepath", image_mode=None,
                                          sources=["upload"], height=200, elem_id=f"support-{i}-mask"),
                                 f"support {i} mask")
        upload.change(lambda mask: gr.Accordion(open=mask is not None), upload, accordion, api_name=False,
                      queue=False)
    return editor, upload


def build_demo(default_weights: str, episodes: Sequence[Episode], masks: MaskFiles) -> gr.Blocks:
    """The page: examples, inputs, results, the three views inside the model, and Label many."""
    menu = WeightsMenu.build(default_weights)
    with gr.Blocks(title="HSNet few-shot segmentation", delete_cache=DELETE_CACHE) as demo:
        gr.Markdown(INTRO)
        query = guard_image(gr.Image(label="Query: the photo to segment", type="filepath", image_mode=None,
                                     sources=["upload", "clipboard"], height=360, elem_id="query-image", render=False),
                            "query image")
        rule = gr.Radio(["vote", "mean-prob"], value="vote", label="K-shot rule", min_width=240, render=False,
                        info="vote: the authors' rule; mean-prob: average probability")
        editors, uploads = [], []
        with gr.Row(equal_height=False) as inputs_row:
            pass
        status = gr.HTML(banner_html(STORE.state(menu.source(menu.default)), menu.label(menu.default)),
                         label="Weights status", elem_id="weights-banner")
        poll = gr.Timer(1.0, active=True)
        with gr.Row(equal_height=False):
            with gr.Column(min_width=320):
                query.render()
            with gr.Column(min_width=320), gr.Tabs(elem_id="support-tabs"):
                for i in range(1, MAX_SUPPORTS + 1):
                    editor, upload = support_tab(i)
                    editors.append(editor)
                    uploads.append(upload)
        with gr.Row(equal_height=False):
            weights = gr.Dropdown(menu.choices(), value=menu.default, label="Checkpoint", allow_custom_value=True,
                                  min_width=320, scale=2, elem_id="weights-menu", elem_classes="hs-keep-focus")
            rule.render()
            mode = gr.Radio([OVER_PHOTO, ALONE], value=OVER_PHOTO, label="Heatmaps", min_width=240,
                            info="colour alone, or blended over the photo")
        run = gr.Button("Segment", variant="primary", size="lg", elem_id="segment-button")
        error = gr.HTML("", elem_id="segment-error")
        outputs = {"summary": OUTPUTS["summary"].component()}
        with gr.Row(equal_height=False, elem_id="results"):
            with gr.Column(min_width=320):
                outputs["result"] = OUTPUTS["result"].component()
                outputs["mask_png"] = OUTPUTS["mask_png"].component()
            with gr.Column(min_width=320):
                outputs["probability"] = OUTPUTS["probability"].component()
        with gr.Tabs(elem_id="views") as views:
            with gr.Tab(PANELS["layers"].label, id="layers"):
                outputs.update(PANELS["layers"].render())
            with gr.Tab(PANELS["probe"].label, id="probe"):
                gr.Markdown(PANELS["probe"].help, elem_classes="hs-help")
                with gr.Row(equal_height=True, elem_id="probe-point"):
                    probe_x = gr.Number(label="x (query pixels)", precision=0, minimum=0, min_width=120)
                    probe_y = gr.Number(label="y (query pixels)", precision=0, minimum=0, min_width=120)
                    probe_run = gr.Button("Probe", min_width=120, scale=0, elem_id="probe-button")
                outputs["probe"] = OUTPUTS["probe"].component()
            with gr.Tab(PANELS["vote"].label, id="vote"):
                outputs.update(PANELS["vote"].render())
        with gr.Accordion("Label many photos with these supports", open=False, elem_id="label-many"):
            gr.Markdown(LABEL_HELP)
            photos = gr.File(label=f"Photos to label: up to {MAX_LABEL_QUERIES} images, or a zip of them (a new "
                                   "upload adds to this list; its × clears it)",
                             file_count="multiple", file_types=["image", ".zip"], elem_id="label-photos")
            with gr.Row(equal_height=False):
                category = gr.Textbox("object", label="Name of the object (the category in the COCO annotations)",
                                      max_length=60, min_width=240, elem_id="label-category")
                label_run = gr.Button("Label them", variant="primary", min_width=160, scale=0, elem_id="label-run")
            label_progress = gr.Markdown("", label="Labelling progress", elem_id="label-progress")
            labelled = gr.Gallery(label="Labelled photos", columns=4, height="auto", object_fit="contain",
                                  elem_id="label-gallery", elem_classes="hs-gallery", buttons=[], preview=False)
            label_zip = gr.DownloadButton("Download the labelled dataset (zip)", variant="secondary",
                                          elem_id="label-zip", interactive=False)
        state = gr.State(None, time_to_live=1800)
        with inputs_row:  # the examples right under the intro, filling the inputs above
            if episodes:
                gr.Examples(example_rows(episodes, MAX_SUPPORTS), inputs=[query, *editors, *uploads, rule],
                            example_labels=[e.title for e in episodes], label="Examples: click one, then Segment")

        form = dict(zip(FORM, [query, weights, rule, *editors, *uploads, mode]))
        for name, component in form.items():
            describe_input(component, API_PARAMETERS[name])
        page = Page(form, outputs, error, state, views, probe_x, probe_y)
        run.click(make_segment_page(page, menu, masks), set(form.values()), [*outputs.values(), error, state],
                  preprocess=False, api_name=False, show_progress_on=[outputs["summary"]], **SEGMENT_QUEUE).then(
            None, None, None, js=f"() => ({SCROLL_TO})('segment-error')")
        api_run = gr.Button(visible=False)  # the `/segment` endpoint: outputs named as docs/app.md documents them
        api_run.click(make_segment_api(menu, masks), list(form.values()),
                      [OUTPUTS[name].component(on_page=False) for name in SEGMENT_API], api_name="segment",
                      **SEGMENT_QUEUE)
        for component in (query, *editors, *uploads):
            component.upload(make_upload_check(component, error), {component}, [error], preprocess=False,
                             api_name=False, show_progress="hidden", concurrency_limit=4, concurrency_id="checks")
        clicked, typed = make_explore(page, masks)
        probe_outputs = [outputs["result"], outputs["probe"], views, state, probe_x, probe_y]
        explore_queue = {**EXPLORE_QUEUE, "api_name": False,
                         "show_progress_on": [outputs["probe"]]}
        outputs["result"].select(clicked, {state, mode}, probe_outputs, **explore_queue).then(
            None, None, None, js=f"() => ({SCROLL_TO})('views')")
        gr.on([probe_run.click, probe_x.submit, probe_y.submit], typed, {state, mode, probe_x, probe_y},
              probe_outputs, **explore_queue)
        mode.change(make_redraw(page, masks), {state, mode},
                    [outputs[o.name] for p in PANELS.values() if p.follows_mode for o in p.outputs],
                    api_name=False, **EXPLORE_QUEUE)
        label_run.click(make_label(menu, masks), [photos, weights, rule, *editors, *uploads, category],
                        [labelled, label_progress, label_zip], api_name="label_many",
                        show_progress_on=[label_progress], **LABEL_QUEUE).then(
            lambda archive: gr.DownloadButton(interactive=archive is not None), label_zip, label_zip, api_name=False,
            queue=False, show_progress="hidden")
        banner = make_banner(menu)
        gr.on([demo.load, weights.change], banner, [weights], [status, poll], api_name=False, queue=False,
              show_progress="hidden")
        poll.tick(banner, [weights], [status, poll], api_name=False, queue=False, show_progress="hidden")
    return demo


def main(argv: Sequence[str] | None = None) -> None:
    """Parse the command line, start loading the weights, and serve the page."""
    parser = argparse.ArgumentParser(description="HSNet few-shot segmentation explorer (Gradio).")
    parser.add_argument("--weights", default=os.environ.get(WEIGHTS_ENV) or hub.DEFAULT_WEIGHTS,
                        help=f"registry name, Hub repo id, or local checkpoint file or folder (default: ${WEIGHTS_ENV} "
                             f"or {hub.DEFAULT_WEIGHTS})")
    parser.add_argument("--port", type=int, default=None,
                        help="port to serve on (default: $GRADIO_SERVER_PORT or 7860)")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))  # a stop (e.g. a Space restarting) runs the atexit cleanup
    private_temp_dir()  # before the page is built: Gradio's cache and the masks go in this process's own folder
    STORE.default = args.weights
    STORE.start(args.weights)
    demo = build_demo(args.weights, read_episodes(EXAMPLES_DIR), MaskFiles())
    demo.queue(**QUEUE)
    demo.launch(server_name=os.environ.get("GRADIO_SERVER_NAME", "127.0.0.1"), server_port=args.port, css=CSS,
                theme=THEME, head=HEAD, **launch_kwargs())


if __name__ == "__main__":
    main()
