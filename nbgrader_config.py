"""nbgrader configuration of the course kit (read from the repository root)."""

from tfcourse_instructor.grading.rendering.page_templates import PAGE_TEMPLATE, TEMPLATE_BASEDIRS

c = get_config()  # noqa: F821 (provided by nbgrader)

c.CourseDirectory.course_id = "transformers-course"
# Defaults plus otter's client log and the checkpoints notebooks save (char_lm.pt), which must
# never travel between folders.
c.CourseDirectory.ignore = [
    ".ipynb_checkpoints",
    "*.pyc",
    "__pycache__",
    "feedback",
    ".OTTER_LOG",
    "*.pt",
]

c.ClearSolutions.code_stub = {"python": "# YOUR CODE HERE\nraise NotImplementedError()"}
c.ClearSolutions.text_stub = "YOUR ANSWER HERE"

# Feedback pages render students' markdown: without scripts, event handlers or frames.
# Formgrader's page shows each written answer's rubric, read from source/ (kit_rubric), and
# each test cell's failed hidden cases with their sources, read from the course's test files
# (kit_hidden_failures); the feedback page shows neither.
c.HTMLExporter.filters = {
    "markdown2html": "tfcourse_instructor.grading.rendering.safe_markdown.safe_markdown",
    "kit_rubric": "tfcourse_instructor.grading.rendering.rubrics.rubric_html",
    "kit_hidden_failures": (
        "tfcourse_instructor.grading.rendering.hidden_failures.hidden_failures_html"
    ),
}
# Feedback and formgrader pages show math as MathML, written with the page: they load no MathJax
# from a CDN and read the same offline (tfcourse_instructor.grading.rendering).
c.HTMLExporter.extra_template_basedirs = TEMPLATE_BASEDIRS
# The kit's page of each template, extending nbgrader's: formgrade adds the rubrics, feedback
# adds nothing (tfcourse_instructor.grading.rendering.page_templates).
c.HTMLExporter.template_file = PAGE_TEMPLATE

# Feedback pages are rendered as HTMLExporter renders them, without its second pass over each
# page (tfcourse_instructor.grading.rendering.feedback_exporter).
c.GenerateFeedback.exporter_class = (
    "tfcourse_instructor.grading.rendering.feedback_exporter.FeedbackExporter"
)

# nbgrader honours Execute.timeout (seconds per cell) during autograde and validate.
c.Execute.timeout = 300

# LMS downloads are filed by the kit (python -m tfcourse_instructor.grading grade --zip FILE): the
# naming convention, id rules and limits are in
# helpers/tfcourse_instructor/grading/classroom/intake.py. Plain `nbgrader zip_collect` stops with a
# message naming that command before unpacking anything.
c.ZipCollectApp.extractor_plugin = "tfcourse_instructor.grading.classroom.doors.KitCollectsOnly"

# Plain `nbgrader autograde` stops with a message naming the kit's command before touching
# anything: it would run students' code unsandboxed, against the public tests only
# (tfcourse_instructor.grading.classroom.doors). Formgrader's Autograde button, answered by the
# kit's formgrader extension, shows that message alone (...classroom.formgrader).
c.Autograde.exporter_class = "tfcourse_instructor.grading.classroom.doors.KitGradesOnly"

# Late submissions (a submission's time is its timestamp.txt; each assignment's due date is in
# course.toml): a late notebook loses a tenth of the points it earned per day or part of a day.
c.AssignLatePenalties.plugin_class = "tfcourse_instructor.grading.classroom.merge.PenaltyPerDay"
c.PenaltyPerDay.per_day = 0.1
