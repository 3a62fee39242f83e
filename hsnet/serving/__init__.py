"""The library behind the app: everything that is not page layout or a callback.

- ``models``: ``ModelStore`` loads weights by name in background threads (banner state, failure memory).
- ``probes``: ``ProbeStore`` keeps what a click on a result needs, at model resolution, within a byte budget.
- ``uploads``: checks on uploads, brush layers and ``data:`` URLs from their headers, before decoding.
- ``guards``: those checks wired into Gradio (component wrappers, a request size limit); imports gradio.
- ``files``: the per-process folder for visitors' files, Gradio's cache sweep, downloadable masks.
- ``label_many``: the "Label many" backend (hsnet.labeling's loop), bounded in count (MAX_LABEL_QUERIES) and bytes
  (MAX_LABEL_BYTES).

How app.py uses it (one store of each kind per process, at module level, so that a
ZeroGPU worker sees them; the GPU step receives the weights NAME):

    TEMP = files.private_temp_dir()                   # first, before gr.Blocks is built
    STORE = ModelStore(default_weights)               # then STORE.start() in main()
    PROBES = ProbeStore()                             # gr.State holds only request.session_hash
    MASKS = files.MaskFiles()

    @on_gpu
    def run_model(weights, query, supports, rule):    # STORE.predictor(weights).predict(...)
    banner: STORE.state(name) -> LoadState(status, message, progress); a gr.Timer polls it while "loading"
    segment: predictor = STORE.predictor(name) raises WeightsNotReadyError (an HSNetError, one line) at once
             PROBES.put(request.session_hash, Probe.build(weights, query, images, masks, predictor.image_size))
    explore: maps = point_maps(STORE.predictor(probe.weights), PROBES.get(session_key), x, y)
             (ProbeExpiredError, one line: "press Segment again"; x, y in the query's original pixels)
    components: guards.guard_image(gr.Image(...), "query image"), guards.guard_editor(gr.ImageEditor(...),
                f"support {i}"), guards.guard_image(gr.Image(...), f"support {i} mask")
    gr.Blocks(delete_cache=files.DELETE_CACHE); demo.launch(**guards.launch_kwargs(), ...)
    label many: for update in label_many(predictor_segmenter(predictor, supports), files, MASKS.answer_folder()):
                gallery += [(update.overlay, update.name)] (a complete thumbnail file); the last update has
                .archive (the dataset zipped, complete) and .skipped
"""
from .files import DELETE_CACHE, MaskFiles, private_temp_dir
from ..labeling import predictor_segmenter
from .label_many import MAX_LABEL_BYTES, MAX_LABEL_QUERIES, LabelUpdate, label_many
from .models import LoadState, ModelStore, WeightsNotReadyError, load_predictor, public_name
from .probes import PROBE_BUDGET_BYTES, Probe, ProbeExpiredError, ProbeStore, point_maps
from .uploads import MAX_BRUSH_LAYERS, MAX_UPLOAD, MAX_UPLOAD_BYTES

__all__ = [
    "DELETE_CACHE", "LabelUpdate", "LoadState", "MAX_BRUSH_LAYERS", "MAX_LABEL_BYTES", "MAX_LABEL_QUERIES",
    "MAX_UPLOAD", "MAX_UPLOAD_BYTES", "MaskFiles", "ModelStore",
    "PROBE_BUDGET_BYTES", "Probe", "ProbeExpiredError", "ProbeStore", "WeightsNotReadyError", "load_predictor",
    "label_many", "point_maps", "predictor_segmenter", "private_temp_dir", "public_name",
]
