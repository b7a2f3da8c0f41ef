// The staff console's only script besides htmx: the import form's progress bar (htmx reports the upload's
// progress; the server then imports all or nothing and answers the summary or the bad rows).
document.addEventListener("htmx:xhr:progress", function (evt) {
  var form = evt.target.closest ? evt.target.closest("#import-form") : null;
  if (!form || !evt.detail.lengthComputable) return;
  var percent = Math.round((evt.detail.loaded / evt.detail.total) * 100);
  var bar = document.getElementById("upload-progress");
  bar.value = percent;
  bar.textContent = percent + "%";
  document.getElementById("upload-state").textContent =
    percent < 100 ? "已上传 " + percent + "%" : "上传完成，正在校验并导入……";
});
document.addEventListener("htmx:afterRequest", function (evt) {
  if (!evt.target.closest || !evt.target.closest("#import-form")) return;
  document.getElementById("upload-state").textContent = evt.detail.successful ? "导入完成" : "未导入，请查看下方错误";
});
