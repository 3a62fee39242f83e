"""The library behind the app: everything that is not page layout or a callback.

- ``models``: ``ModelStore`` loads weights by name in background threads (banner state, failure memory).
- ``probes``: ``ProbeStore`` keeps what a click on a result needs, at model resolution, within a byte budget.
- ``uploads``: checks on uploads, brush layers and ``data:`` URLs from their headers, before decoding.
- ``guards``: those checks wired into Gradio (component wrappers, a request size limit); imports gradio.
- ``files``: the per-process folder for visitors' files, Gradio's cache sweep, downloadable masks.

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
    explore: probe = PROBES.get(session_key) (ProbeExpiredError: "press Segment again")
    components: guards.guard_image(gr.Image(...), "query image"), guards.guard_editor(gr.ImageEditor(...),
                f"support {i}"), guards.guard_image(gr.Image(...), f"support {i} mask")
    gr.Blocks(delete_cache=files.DELETE_CACHE); demo.launch(**guards.launch_kwargs(), ...)
"""
from .files import DELETE_CACHE, MaskFiles, private_temp_dir
from .models import LoadState, ModelStore, WeightsNotReadyError, load_predictor, public_name
from .probes import PROBE_BUDGET_BYTES, Probe, ProbeExpiredError, ProbeStore
from .uploads import MAX_BRUSH_LAYERS, MAX_UPLOAD, MAX_UPLOAD_BYTES

__all__ = [
    "DELETE_CACHE", "LoadState", "MAX_BRUSH_LAYERS", "MAX_UPLOAD", "MAX_UPLOAD_BYTES", "MaskFiles", "ModelStore",
    "PROBE_BUDGET_BYTES", "Probe", "ProbeExpiredError", "ProbeStore", "WeightsNotReadyError", "load_predictor",
    "private_temp_dir", "public_name",
]
