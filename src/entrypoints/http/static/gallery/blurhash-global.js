// The vendored blurhash decoder is an ES module, and gallery.js a classic script (its state is
// global, for the page's tests to read): this hands the decoder over as a global. A module is
// deferred like gallery.js, and runs before it as it comes first in the page.
import { decode, isBlurhashValid } from "./vendor/blurhash.js";

window.blurhash = { decode, isBlurhashValid };
