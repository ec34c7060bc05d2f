// Marks each table that is wider than the room it has (see theme-tables.css:
// its code spans may then break anywhere), again whenever that room changes
// (a resized window, the sidebar shown or hidden). No network, no state.
(function () {
    'use strict';
    function fit() {
        document.querySelectorAll('.content .table-wrapper').forEach(function (wrapper) {
            wrapper.classList.remove('table-tight');
            if (wrapper.scrollWidth > wrapper.clientWidth + 1) {
                wrapper.classList.add('table-tight');
            }
        });
    }
    var content = document.querySelector('.content');
    if (content && window.ResizeObserver) {
        new ResizeObserver(fit).observe(content);
    }
    window.addEventListener('load', fit);
})();
